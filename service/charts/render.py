"""Vega-Lite to SVG or PNG on the server, with vl-convert (Vega-Lite and Vega compiled into a Rust library with
its own JavaScript engine): no browser, no Node.js, no torch. It is loaded on the first rendered chart, so an
API process that never renders one does not pay for it."""

from __future__ import annotations

import threading
from typing import Any, Literal

ImageFormat = Literal["svg", "png"]
MEDIA_TYPES = {"json": "application/vnd.vegalite+json", "svg": "image/svg+xml", "png": "image/png"}
VEGA_LITE_VERSION = "v6.4"
PNG_SCALE = 2  # sharp on high-density screens and in documents

# One rendering at a time per process: the converter's JavaScript engine is single-threaded, and renders
# waiting here hold a pool thread each rather than memory.
_one_at_a_time = threading.Lock()


def render(chart: dict[str, Any], format: ImageFormat) -> bytes:
    """`chart` as an SVG document or a PNG image. The chart's data is inline; the converter may fetch
    nothing (no URL is allowed), so a chart cannot make the server reach anywhere."""
    import vl_convert

    with _one_at_a_time:
        if format == "svg":
            svg: str = vl_convert.vegalite_to_svg(chart, vl_version=VEGA_LITE_VERSION, allowed_base_urls=[])
            return svg.encode()
        png: bytes = vl_convert.vegalite_to_png(
            chart, vl_version=VEGA_LITE_VERSION, scale=PNG_SCALE, allowed_base_urls=[]
        )
        return png
