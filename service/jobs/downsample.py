"""Fewer points for long curves, keeping their shape: a chart of a 100,000-epoch job stays cheap."""

from __future__ import annotations

import math
from typing import Any

SHAPE_METRIC = "val_loss"


def downsample(items: list[dict[str, Any]], max_points: int, best_epoch: int | None) -> list[dict[str, Any]]:
    """At most `max_points` epochs: the first, the last, the best, and per bucket of the rest the epochs
    with the lowest and the highest validation loss (min-max decimation keeps every peak and dip).
    """
    if len(items) <= max_points:
        return items
    last = len(items) - 1
    keep = {0, last}
    if best_epoch is not None:
        keep.update(i for i, item in enumerate(items) if item["epoch"] == best_epoch)
    keep = set(sorted(keep)[:max_points])
    buckets = (max_points - len(keep)) // 2
    if buckets > 0:
        interior = range(1, last)
        size = len(interior) / buckets
        for b in range(buckets):
            bucket = interior[int(b * size) : int((b + 1) * size)]
            keep.update(_extremes(items, bucket))
    return [items[i] for i in sorted(keep)]


def _extremes(items: list[dict[str, Any]], bucket: range) -> set[int]:
    finite = [i for i in bucket if _finite(items[i].get(SHAPE_METRIC))]
    if not finite:
        return {bucket[0]} if len(bucket) else set()
    return {
        min(finite, key=lambda i: items[i][SHAPE_METRIC]),
        max(finite, key=lambda i: items[i][SHAPE_METRIC]),
    }


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
