"""HTTP routes for predictions: POST /v1/jobs/{job_id}/predict and /v1/models/{model_id}/predict (JSON), and
each one's /file (a CSV, Parquet, npz or image file); larger files as batch predictions, answered by a worker
(POST …/predictions, GET /v1/predictions/{id} and its /file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Path, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore, prediction_answers_key
from core.datasets import storage
from core.errors import Conflict
from core.queue import TaskQueue
from core.settings import Settings
from core.tenants.limits import limits_for
from core.tenants.principal import Principal
from service.deps import ArtifactsDep, QueueDep, SessionDep, SettingsDep
from service.errors import Problem
from service.predictions import inputs, service
from service.predictions.runtime import Predictor
from service.predictions.schemas import BatchPredictionRead, PredictionRead, PredictRequest
from service.tenants.deps import PrincipalDep

router = APIRouter(tags=["predictions"])

JobId = Annotated[str, Path(description="A succeeded job's `id`.")]
ModelId = Annotated[str, Path(description="The `id` of a model saved from a job (POST /v1/jobs/{id}/model).")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such job or model."},
    409: {"model": Problem, "description": "There is no ONNX model to answer yet; `detail` says why."},
    413: {
        "model": Problem,
        "description": "More rows than `max_predict_rows` (send them as a batch prediction: POST …/predictions), "
        "or a file over `max_upload_bytes`.",
    },
    422: {
        "model": Problem,
        "description": "Rows of the wrong shape, missing or unexpected columns, a missing value, a text value "
        "training never saw; `errors` names the row and column.",
    },
}
EXAMPLES = {
    "rows": {"summary": "Rows in feature order", "value": {"rows": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}},
    "records": {"summary": "Records by column", "value": {"records": [{"x1": 0.5, "x2": 3, "colour": "red"}]}},
}
FILE_BODY = {"requestBody": {"content": {"multipart/form-data": {"example": {"file": "x1,colour,x2\n1.5,red,0\n"}}}}}
PredictBody = Annotated[PredictRequest, Body(openapi_examples=EXAMPLES)]
RowsFile = Annotated[
    UploadFile,
    File(
        description="A CSV file with a header row, or Parquet (columns by name), an `.npz` with an array `x`, or "
        "for an image model a PNG or JPEG image, or a zip of them (the answer names each)."
    ),
]


def job_model(
    job_id: JobId, request: Request, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> Predictor:
    """The job's ONNX model, from this process's cache."""
    return service.predictor(session, store, request.app.state.predictors, job_id, principal)


def saved_model(
    model_id: ModelId, request: Request, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> Predictor:
    return service.model_predictor(session, store, request.app.state.predictors, model_id, principal)


JobModelDep = Annotated[Predictor, Depends(job_model)]
SavedModelDep = Annotated[Predictor, Depends(saved_model)]


def _answer(source_id: str, body: PredictRequest, model: Predictor, settings: Settings) -> PredictionRead:
    def rows() -> tuple[Any, None]:
        if body.rows is not None:
            return inputs.from_rows(body.rows, model.signature), None
        return inputs.from_records(body.records or [], model.signature), None

    return service.predict(source_id, model, rows, settings.max_predict_rows)


def _answer_file(source_id: str, file: UploadFile, model: Predictor, settings: Settings) -> PredictionRead:
    with storage.received(file.file, settings.data_dir / "uploads") as received:
        return service.predict(
            source_id,
            model,
            lambda: inputs.from_file(
                received.path, model.signature, settings.max_predict_rows, settings.max_image_pixels
            ),
            settings.max_predict_rows,
        )


@router.post("/v1/jobs/{job_id}/predict", operation_id="predict", responses=ERRORS)
def predict(job_id: JobId, body: PredictBody, model: JobModelDep, settings: SettingsDep) -> PredictionRead:
    """Predict with the job's model (its ONNX export, run by onnxruntime): class probabilities or values.

    The job's preprocessing is applied: column order, one-hot encoding of text columns, imputation where
    training had it, standardization. For larger inputs, send a file to /predict/file."""
    return _answer(job_id, body, model, settings)


@router.post("/v1/jobs/{job_id}/predict/file", operation_id="predict_file", responses=ERRORS, openapi_extra=FILE_BODY)
def predict_file(job_id: JobId, file: RowsFile, model: JobModelDep, settings: SettingsDep) -> PredictionRead:
    """Predict for the rows of a file, as /predict does for JSON; up to `max_predict_rows` rows."""
    return _answer_file(job_id, file, model, settings)


@router.post("/v1/models/{model_id}/predict", operation_id="predict_with_model", responses=ERRORS)
def predict_with_model(
    model_id: ModelId, body: PredictBody, model: SavedModelDep, settings: SettingsDep
) -> PredictionRead:
    """Predict with a model saved from a job, as POST /v1/jobs/{id}/predict does with the job."""
    return _answer(model_id, body, model, settings)


@router.post(
    "/v1/models/{model_id}/predict/file",
    operation_id="predict_file_with_model",
    responses=ERRORS,
    openapi_extra=FILE_BODY,
)
def predict_file_with_model(
    model_id: ModelId, file: RowsFile, model: SavedModelDep, settings: SettingsDep
) -> PredictionRead:
    """Predict for the rows of a file with a model saved from a job."""
    return _answer_file(model_id, file, model, settings)


BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: ERRORS[status] for status in (404, 409, 422)},
    413: {"model": Problem, "description": "More rows than `max_upload_rows`, or a file over `max_upload_bytes`."},
}


@dataclass(frozen=True)
class Batches:
    """What a batch submission needs from the request: checks the file's rows now, queues a worker."""

    session: Session
    store: ArtifactStore
    queue: TaskQueue
    settings: Settings
    principal: Principal

    def submit(self, source: dict[str, str], file: UploadFile, model: Predictor) -> BatchPredictionRead:
        settings, owner = self.settings, self.principal.owner
        max_rows = limits_for(self.session, settings, owner).max_upload_rows
        with storage.received(file.file, settings.data_dir / "uploads") as received:
            rows, names = inputs.from_file(received.path, model.signature, max_rows, settings.max_image_pixels)
        return service.submit_batch(
            self.session, self.store, self.queue, owner=owner, source=source, rows=rows, names=names
        )


def batches(
    session: SessionDep, store: ArtifactsDep, queue: QueueDep, settings: SettingsDep, principal: PrincipalDep
) -> Batches:
    return Batches(session, store, queue, settings, principal)


BatchesDep = Annotated[Batches, Depends(batches)]


@router.post(
    "/v1/jobs/{job_id}/predictions",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="submit_batch_prediction",
    responses=BATCH_ERRORS,
    openapi_extra=FILE_BODY,
)
def submit_batch_prediction(
    job_id: JobId, file: RowsFile, model: JobModelDep, batches: BatchesDep
) -> BatchPredictionRead:
    """Predict for a large file in the background: its rows are checked now (a 4xx names what is wrong), a
    worker answers them, and the CSV is downloaded from `file` once it has succeeded. Up to `max_upload_rows`."""
    return batches.submit({"job_id": job_id}, file, model)


@router.post(
    "/v1/models/{model_id}/predictions",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="submit_batch_prediction_with_model",
    responses=BATCH_ERRORS,
    openapi_extra=FILE_BODY,
)
def submit_batch_prediction_with_model(
    model_id: ModelId, file: RowsFile, model: SavedModelDep, batches: BatchesDep
) -> BatchPredictionRead:
    """A batch prediction with a model saved from a job."""
    return batches.submit({"model_id": model_id}, file, model)


PredictionId = Annotated[str, Path(description="The batch prediction's `id`.")]
NO_PREDICTION: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such prediction."}}


@router.get("/v1/predictions/{prediction_id}", operation_id="get_batch_prediction", responses=NO_PREDICTION)
def get_batch_prediction(
    prediction_id: PredictionId, session: SessionDep, principal: PrincipalDep
) -> BatchPredictionRead:
    """A batch prediction's status and progress (`rows_done` of `rows`), and its `file` once it has succeeded."""
    return service.get_batch(session, prediction_id, principal)


@router.get(
    "/v1/predictions/{prediction_id}/file",
    operation_id="download_batch_prediction",
    response_class=Response,
    responses={
        **NO_PREDICTION,
        200: {"content": {"text/csv": {}}, "description": "The predictions, a row per input row."},
        409: {"model": Problem, "description": "The prediction has not succeeded (yet)."},
    },
)
def download_batch_prediction(
    prediction_id: PredictionId, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> Response:
    """Download a succeeded batch prediction's CSV."""
    read = service.get_batch(session, prediction_id, principal)
    opened = store.open(prediction_answers_key(prediction_id)) if read.file else None
    if opened is None:
        raise Conflict(f"prediction `{prediction_id}` is {read.status}: its file is there once it has succeeded")
    return StreamingResponse(
        opened.chunks,
        media_type="text/csv",
        headers={
            "Content-Length": str(opened.size),
            "Content-Disposition": f'attachment; filename="predictions-{prediction_id}.csv"',
        },
    )
