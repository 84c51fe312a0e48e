"""A metrics page as JSON, joined from the stored rows' text rather than built through `MetricsPage`.

Each epoch's metrics are stored as JSON text, and a worker writes a non-finite number as null. So an item is
`{"epoch":N,` followed by the stored text after its `{`: nothing is decoded, validated or encoded again.
1,000 epochs of 6 metrics take about 0.5 ms of CPU this way, against about 5 ms to decode them into a
`MetricsPage` and encode that (BENCHMARKS.md). A row that is not plain JSON (a `NaN` or an infinity that
Python's json writes, from a writer that did not turn them into null) is decoded and written again, with
those values as null, as `MetricsPage` writes them. Either way the bytes parse to what
`MetricsPage(...).model_dump_json()` gives for the same rows (tests/jobs/test_metrics_json.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

NON_FINITE = ("NaN", "Infinity")  # how Python's json writes NaN and ±inf; JSON itself has no such numbers


def metrics_page(job_id: str, status: str, rows: Sequence[tuple[int, str]]) -> bytes:
    """`MetricsPage` JSON of the rows `repository.epoch_texts` read, oldest first."""
    items = ",".join([_item(epoch, text) for epoch, text in rows])
    return f'{{"job_id":{json.dumps(job_id)},"status":{json.dumps(status)},"items":[{items}]}}'.encode()


def _item(epoch: int, text: str) -> str:
    if text[:1] == "{" and text[1:2] not in ("}", "") and not any(token in text for token in NON_FINITE):
        return f'{{"epoch":{epoch},{text[1:]}'
    return _rewritten(epoch, json.loads(text))


def _rewritten(epoch: int, metrics: dict[str, Any]) -> str:
    item = {"epoch": epoch, **{key: _finite(value) for key, value in metrics.items()}}
    return json.dumps(item, separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
