"""A metrics page joined from the stored JSON texts says what `MetricsPage` would: the same JSON, whatever
the rows hold."""

from __future__ import annotations

import json
import math
from typing import Any

from service.jobs.metrics_json import metrics_page
from service.jobs.schemas import MetricsPage

JOB = "1d5e7c9a-0000-4000-8000-000000000001"


def stored(metrics: dict[str, Any], **dumps: Any) -> str:
    """The metrics as the JSON column stores them: Python's json, which writes NaN and ±inf as bare words."""
    return json.dumps(metrics, **dumps)


def model_page(rows: list[tuple[int, str]]) -> Any:
    items = [{"epoch": epoch, **json.loads(text)} for epoch, text in rows]
    return json.loads(MetricsPage(job_id=JOB, status="running", items=items).model_dump_json())


def test_the_joined_page_parses_to_the_model_s_json() -> None:
    rows = [
        (1, stored({"train_loss": 0.5, "val_loss": 0.75, "lr": 0.01})),
        (2, stored({"train_loss": None, "val_loss": 1e-07, "lr": 1e16})),  # a diverged loss, tiny and huge numbers
        (3, stored({"train_loss": math.nan, "val_loss": math.inf, "grad_norm": -math.inf})),
        (4, stored({"dead_units": 3, "val_loss": 0.25}, separators=(",", ":"))),  # an int; no spaces
        (5, stored({})),
        (7, '{"val_loss" : 0.125, "train_loss" : 2}'),  # as PostgreSQL's json_build_object writes it
        (8, stored({"NaN_guard": 1.5})),  # a key with a word that only looks non-finite
    ]
    joined = json.loads(metrics_page(JOB, "running", rows))
    assert joined == model_page(rows)
    assert joined["items"][2] == {"epoch": 3, "train_loss": None, "val_loss": None, "grad_norm": None}
    assert joined["items"][4] == {"epoch": 5}
    assert json.loads(metrics_page(JOB, "queued", [])) == {"job_id": JOB, "status": "queued", "items": []}


def test_the_joined_page_is_valid_json_without_non_finite_words() -> None:
    body = metrics_page(JOB, "running", [(1, stored({"val_loss": math.nan})), (2, stored({"val_loss": -math.inf}))])
    assert b"NaN" not in body and b"Infinity" not in body
    assert json.loads(body)["items"] == [{"epoch": 1, "val_loss": None}, {"epoch": 2, "val_loss": None}]
