"""What the prediction routes do: find the job's exported model, build its rows, and answer with onnxruntime."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import numpy as np
from sqlalchemy.orm import Session

from core.analyses import repository as analyses
from core.artifacts import ArtifactStore, model_onnx_key, onnx_key, prediction_rows_key
from core.db.engine import after_commit
from core.db.models import Prediction
from core.errors import ApiError, Conflict, NotFound
from core.predictions import repository as predictions
from core.queue import TaskQueue
from core.states import AnalysisKind, JobStatus, PredictionStatus
from core.tenants.principal import Principal
from service.jobs import service as jobs
from service.models import service as models
from service.predictions.runtime import Predictor, PredictorCache
from service.predictions.schemas import BatchPredictionRead, PredictionRead


def predictor(
    session: Session, store: ArtifactStore, cache: PredictorCache, job_id: str, principal: Principal
) -> Predictor:
    """The job's model, loaded once per process; a 409 says why a job has none."""
    job = jobs.get(session, job_id, principal)
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"job `{job_id}` is {job.status}: only a succeeded job has a model to predict with")

    def load() -> Predictor:
        model = store.get(onnx_key(job_id))
        if model is None:
            export = analyses.get(session, job_id, AnalysisKind.ONNX)
            state = "was never made" if export is None else f"is {export.status}"
            reason = f" ({export.error})" if export is not None and export.error else ""
            raise Conflict(
                f"job `{job_id}` has no ONNX model yet: its export {state}{reason}. "
                'POST /v1/jobs/{id}/analyses {"kind": "onnx"} makes one'
            )
        return Predictor.load(model)

    return cache.get(job_id, load)


def model_predictor(
    session: Session, store: ArtifactStore, cache: PredictorCache, model_id: str, principal: Principal
) -> Predictor:
    """A saved model's ONNX export, loaded once per process; an uploaded model has none (a 409 says so)."""
    model = models.get(session, model_id, principal)
    if not model.predictable:
        raise Conflict(
            f"model `{model_id}` was uploaded as weights alone: it has no ONNX export or preprocessing to predict "
            'with. Train a job from it (`"init_from": {"model_id": ...}`) and predict with the job'
        )

    def load() -> Predictor:
        exported = store.get(model_onnx_key(model_id))
        if exported is None:
            raise Conflict(f"model `{model_id}` has lost its ONNX export")
        return Predictor.load(exported)

    return cache.get(f"model:{model_id}", load)


def predict(
    source_id: str, model: Predictor, rows: Callable[[], tuple[np.ndarray, list[str] | None]], max_rows: int
) -> PredictionRead:
    x, names = rows()
    if len(x) > max_rows:
        raise ApiError(
            f"{len(x)} rows, over the limit `max_predict_rows` of {max_rows}: send them as a batch prediction "
            "(POST /v1/jobs/{id}/predictions with the file)",
            status=413,
        )
    answer = model.run(x)
    signature = model.signature
    if signature.task == "regression":
        return PredictionRead(source_id=source_id, task="regression", rows=len(x), names=names, values=answer.tolist())
    classes = signature.class_names
    return PredictionRead(
        source_id=source_id,
        task="classification",
        rows=len(x),
        names=names,
        classes=classes,
        predicted=[classes[i] for i in answer.argmax(axis=1).tolist()],
        probabilities=answer.tolist(),
    )


def submit_batch(
    session: Session,
    store: ArtifactStore,
    queue: TaskQueue,
    *,
    owner: str,
    source: dict[str, str],
    rows: np.ndarray,
    names: list[str] | None,
) -> BatchPredictionRead:
    """Keep the checked rows and queue a worker to answer them (after the commit)."""
    prediction_id = str(uuid.uuid4())
    buffer = io.BytesIO()
    arrays = {"x": rows, **({"names": np.array(names)} if names else {})}
    np.savez(buffer, allow_pickle=False, **arrays)
    store.put(prediction_rows_key(prediction_id), buffer.getvalue())
    prediction = predictions.add(
        session,
        Prediction(id=prediction_id, owner=owner, status=PredictionStatus.QUEUED, rows=len(rows), **source),
    )
    after_commit(session, lambda: queue.send_prediction(prediction_id))
    return batch_read(prediction)


def get_batch(session: Session, prediction_id: str, principal: Principal) -> BatchPredictionRead:
    prediction = predictions.get(session, prediction_id)
    if prediction is None or not principal.sees(prediction.owner):
        raise NotFound(f"no prediction `{prediction_id}`")
    return batch_read(prediction)


def batch_read(prediction: Prediction) -> BatchPredictionRead:
    read = BatchPredictionRead.model_validate(prediction)
    if prediction.status == PredictionStatus.SUCCEEDED:
        read.file = f"/v1/predictions/{prediction.id}/file"
    return read
