"""HTTP routes for predictions: POST /v1/jobs/{job_id}/predict (JSON) and /predict/file (a file)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Path, Request, UploadFile

from core.datasets import storage
from service.deps import ArtifactsDep, SessionDep, SettingsDep
from service.errors import Problem
from service.predictions import inputs, service
from service.predictions.runtime import Predictor
from service.predictions.schemas import PredictionRead, PredictRequest
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/jobs", tags=["predictions"])

JobId = Annotated[str, Path(description="A succeeded job's `id`.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No job with this id."},
    409: {"model": Problem, "description": "The job has not succeeded, or has no ONNX model; `detail` says why."},
    413: {"model": Problem, "description": "More rows than `max_predict_rows`, or a file over `max_upload_bytes`."},
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


def job_model(
    job_id: JobId, request: Request, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> Predictor:
    """The job's ONNX model, from this process's cache."""
    return service.predictor(session, store, request.app.state.predictors, job_id, principal)


JobModelDep = Annotated[Predictor, Depends(job_model)]


@router.post("/{job_id}/predict", operation_id="predict", responses=ERRORS)
def predict(
    job_id: JobId,
    body: Annotated[PredictRequest, Body(openapi_examples=EXAMPLES)],
    model: JobModelDep,
    settings: SettingsDep,
) -> PredictionRead:
    """Predict with the job's model (its ONNX export, run by onnxruntime): class probabilities or values.

    The job's preprocessing is applied: column order, one-hot encoding of text columns, imputation where
    training had it, standardization. For larger inputs, send a file to /predict/file."""
    signature = model.signature

    def rows() -> Any:
        if body.rows is not None:
            return inputs.from_rows(body.rows, signature)
        return inputs.from_records(body.records or [], signature)

    return service.predict(job_id, model, rows, settings.max_predict_rows)


@router.post(
    "/{job_id}/predict/file",
    operation_id="predict_file",
    responses=ERRORS,
    openapi_extra={
        "requestBody": {"content": {"multipart/form-data": {"example": {"file": "x1,colour,x2\n1.5,red,0\n"}}}}
    },
)
def predict_file(
    job_id: JobId,
    file: Annotated[
        UploadFile,
        File(description="A CSV file with a header row, or Parquet (columns by name), or `.npz` with an array `x`."),
    ],
    model: JobModelDep,
    settings: SettingsDep,
) -> PredictionRead:
    """Predict for the rows of a file, as /predict does for JSON; up to `max_predict_rows` rows."""
    with storage.received(file.file, settings.data_dir / "uploads") as received:
        return service.predict(
            job_id,
            model,
            lambda: inputs.from_file(received.path, model.signature, settings.max_predict_rows),
            settings.max_predict_rows,
        )
