"""HTTP routes for /v1/models, and POST /v1/jobs/{job_id}/model (keep a job's weights as a model)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, File, Form, Path, Query, Request, UploadFile, status

from core.datasets import storage
from core.tenants.limits import limits_for
from service.deps import ArtifactsDep, SessionDep, SettingsDep
from service.errors import Problem
from service.models import service
from service.models.schemas import ModelFromJob, ModelList, ModelRead
from service.tenants.deps import PrincipalDep

router = APIRouter(tags=["models"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No model with this id."}}
ModelId = Annotated[str, Path(description="The model's `id`.")]
EXAMPLE_MODEL = '{"hidden_layers": [8]}'


@router.post(
    "/v1/models",
    status_code=status.HTTP_201_CREATED,
    operation_id="upload_model",
    openapi_extra={
        "requestBody": {
            "content": {"multipart/form-data": {"example": {"file": "(a .safetensors file)", "model": EXAMPLE_MODEL}}}
        }
    },
    responses={
        413: {"model": Problem, "description": "The file is over `max_upload_bytes`."},
        422: {
            "model": Problem,
            "description": "`model` is not a valid model block, the file is not safetensors (a pickle is refused "
            "unread), or its tensors do not fit the architecture: `detail` lists the missing, unexpected and "
            "mis-shaped ones.",
        },
    },
)
def upload_model(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The weights: a safetensors file, named as steadyfit names them.")],
    model: Annotated[str, Form(description="The architecture they fit, as JSON: a job spec's `model` block.")],
    input_shape: Annotated[
        str | None,
        Form(
            description="JSON, e.g. [3, 32, 32]: what the network takes. Needed for a cnn; an mlp's is read "
            "from its first layer."
        ),
    ] = None,
    name: Annotated[str | None, Form(max_length=200, description="A label for people.")] = None,
) -> ModelRead:
    """Upload weights to start jobs from (`"init_from": {"model_id": ...}`), checked against their architecture.

    The tensors' names and shapes must be exactly those of the model the `model` block describes, as a job
    of that spec keeps them (GET a job's `weights.safetensors` to see the layout)."""
    store = request.app.state.artifacts
    with storage.received(file.file, settings.data_dir / "uploads") as received:
        created = service.upload(
            session,
            store,
            owner=principal.owner,
            received=received,
            name=name,
            model=model,
            input_shape=input_shape,
            limits=limits_for(session, settings, principal.owner),
        )
    return ModelRead.model_validate(created)


@router.post(
    "/v1/jobs/{job_id}/model",
    status_code=status.HTTP_201_CREATED,
    operation_id="save_job_model",
    responses={
        404: {"model": Problem, "description": "No job with this id."},
        409: {"model": Problem, "description": "The job has not succeeded."},
    },
)
def save_job_model(
    job_id: Annotated[str, Path(description="A succeeded job's `id`.")],
    session: SessionDep,
    store: ArtifactsDep,
    principal: PrincipalDep,
    body: Annotated[ModelFromJob | None, Body(openapi_examples={"named": {"value": {"name": "digits-mlp v1"}}})] = None,
) -> ModelRead:
    """Keep a succeeded job's weights, with its ONNX export, as a model: a starting point for later jobs that
    also answers predictions (POST /v1/models/{id}/predict)."""
    return ModelRead.model_validate(service.from_job(session, store, job_id, body.name if body else None, principal))


@router.get("/v1/models", operation_id="list_models")
def list_models(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> ModelList:
    """List your models (an admin: everyone's), newest first."""
    return service.list_models(session, principal, limit=limit, cursor=cursor)


@router.get("/v1/models/{model_id}", operation_id="get_model", responses=NOT_FOUND)
def get_model(model_id: ModelId, session: SessionDep, principal: PrincipalDep) -> ModelRead:
    """A model's architecture, input shape, outputs, size and source."""
    return ModelRead.model_validate(service.get(session, model_id, principal))


@router.delete(
    "/v1/models/{model_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_model", responses=NOT_FOUND
)
def delete_model(
    model_id: ModelId, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep, background: BackgroundTasks
) -> None:
    """Delete a model and its files; a job already started from it keeps its own weights."""
    prefix = service.delete(session, model_id, principal)
    background.add_task(store.delete, prefix)  # after the commit: a rolled-back delete keeps its files
