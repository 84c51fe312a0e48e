"""A batch prediction (POST /v1/jobs/{id}/predictions): the rows the API parsed and checked, answered in chunks
by onnxruntime with the job's (or the saved model's) ONNX export, and written as one CSV file
(core/predictions/table.py) to the artifact store. `rows_done` grows after each chunk, so a poller sees
progress. A redelivered task (its worker was lost) starts again from the first row; a finished one is left."""

from __future__ import annotations

import csv
import io
import json
import logging

import numpy as np

from core.artifacts import (
    ONNX_INPUT,
    ONNX_METADATA,
    ArtifactStore,
    model_onnx_key,
    onnx_key,
    prediction_answers_key,
    prediction_rows_key,
)
from core.db.engine import Database
from core.predictions import repository, table
from core.states import PredictionStatus

log = logging.getLogger(__name__)
CHUNK = 10_000  # rows per onnxruntime call, and between two progress updates


def run(database: Database, artifacts: ArtifactStore, prediction_id: str) -> None:
    with database.session() as session:
        prediction = repository.get(session, prediction_id)
        if prediction is None or prediction.status == PredictionStatus.SUCCEEDED:
            return
        job_id, model_id = prediction.job_id, prediction.model_id
        repository.record(session, prediction_id, PredictionStatus.RUNNING, rows_done=0)
    try:
        model = artifacts.get(onnx_key(job_id) if job_id is not None else model_onnx_key(str(model_id)))
        stored = artifacts.get(prediction_rows_key(prediction_id))
        if model is None or stored is None:
            raise LookupError("the model or the rows are no longer stored")
        answers = _answered(database, prediction_id, model, stored)
        artifacts.put(prediction_answers_key(prediction_id), answers)
    except Exception as exc:
        log.exception("prediction %s failed", prediction_id)
        with database.session() as session:
            repository.record(session, prediction_id, PredictionStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return
    with database.session() as session:
        prediction = repository.get(session, prediction_id)
        rows = prediction.rows if prediction is not None else 0
        repository.record(session, prediction_id, PredictionStatus.SUCCEEDED, rows_done=rows)


def _answered(database: Database, prediction_id: str, model: bytes, stored: bytes) -> bytes:
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map[ONNX_METADATA])
    classes = metadata["class_names"] if metadata["task"] == "classification" else None
    with np.load(io.BytesIO(stored), allow_pickle=False) as arrays:
        x = arrays["x"]
        names = arrays["names"].tolist() if "names" in arrays.files else None
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header(classes, names is not None))
    for start in range(0, len(x), CHUNK):
        answers = session.run(None, {ONNX_INPUT: x[start : start + CHUNK]})[0]
        writer.writerows(table.rows(start, answers, classes, names[start : start + CHUNK] if names else None))
        with database.session() as db:
            repository.record(db, prediction_id, PredictionStatus.RUNNING, rows_done=start + len(answers))
    return out.getvalue().encode()
