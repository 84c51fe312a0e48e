"""The built-in dashboard at /ui: one HTML page with its scripts (plain ES modules) and style, shipped in the package.

Every dashboard address serves the same page; the script reads the path and draws the view. The page
talks to the public API only, exactly as any other dashboard would.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from core.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
JAVASCRIPT = "text/javascript"
ASSETS = {
    "dashboard.js": JAVASCRIPT,
    "common.js": JAVASCRIPT,
    "jobs.js": JAVASCRIPT,
    "job.js": JAVASCRIPT,
    "diagnosis.js": JAVASCRIPT,
    "analyses.js": JAVASCRIPT,
    "compare.js": JAVASCRIPT,
    "sweeps.js": JAVASCRIPT,
    "paths.js": JAVASCRIPT,
    "models.js": JAVASCRIPT,
    "logs.js": JAVASCRIPT,
    "chart.js": JAVASCRIPT,
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
PAGES = (
    "",
    "/new",
    "/jobs/{job_id}",
    "/compare",
    "/sweeps",
    "/sweeps/{sweep_id}",
    "/paths",
    "/paths/{path_id}",
    "/models",
)
# The page loads nothing but its own files and talks to nothing but this API.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Revalidated on every load (a cheap 304 via ETag), so an upgrade never leaves a stale script behind.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    """People who open the server's address land on the dashboard."""
    return RedirectResponse("/ui")


def serve_file(request: Request, name: str, media_type: str, headers: dict[str, str]) -> Response:
    """The file, or a 304 when the browser already holds this version of it."""
    path = STATIC_DIR / name
    response = FileResponse(path, media_type=media_type, headers=headers, stat_result=os.stat(path))
    etag = response.headers["etag"]
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


def page(request: Request) -> Response:
    """The dashboard's single page; the script picks the view from the path."""
    headers = {**HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return serve_file(request, "index.html", "text/html; charset=utf-8", headers)


for path in PAGES:
    router.add_api_route(f"/ui{path}", page, methods=["GET"])


@router.get("/ui/static/{name}")
def asset(name: str, request: Request) -> Response:
    """One of the dashboard's files; only the names listed in ASSETS are served."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no dashboard file `{name}`")
    return serve_file(request, name, media_type, HEADERS)
