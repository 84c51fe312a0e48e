"""What the models API does: check uploaded weights against their architecture, save a job's weights as a
model, and list, read and delete models. Services only flush."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.artifacts import (
    MODEL_CARD,
    ArtifactStore,
    NotSafetensors,
    TensorInfo,
    model_onnx_key,
    model_prefix,
    model_weights_key,
    onnx_key,
    safetensors_metadata,
    safetensors_tensors,
    weights_key,
)
from core.datasets.storage import Received
from core.db.models import Model
from core.errors import ApiError, Conflict, InvalidSpec, NotFound, invalid_cursor_is_422, invalid_fields
from core.models import repository
from core.spec.architecture import BATCH_NORM_STATISTICS, parameter_count, tensor_shapes
from core.spec.job import ModelSpec
from core.states import JobStatus
from core.tenants.limits import Limits
from core.tenants.principal import Principal
from service.jobs import service as jobs
from service.models.schemas import ModelList, ModelRead

FLOATS = ("F64", "F32", "F16", "BF16")
SHOWN = 8  # differences listed in a 422, of each kind


def upload(
    session: Session,
    store: ArtifactStore,
    *,
    owner: str,
    received: Received,
    name: str | None,
    model: str,
    input_shape: str | None,
    limits: Limits,
) -> Model:
    """Check the file (a safetensors file that fits the architecture) and keep it as the owner's model:
    1. the `model` form field is a spec's `model` block;
    2. the file is safetensors (core/artifacts.safetensors_tensors: nothing is unpickled);
    3. the input shape is `input_shape`, or for an MLP the first layer's width; the outputs are the output
       layer's; a CNN's weights do not say its image size, so it needs `input_shape`;
    4. the file's tensors are exactly the architecture's, in name and shape, parameters as floats.
    """
    spec = _model_spec(model)
    if received.size > limits.max_upload_bytes:
        raise ApiError(
            f"the file is {received.size} bytes, over `max_upload_bytes` ({limits.max_upload_bytes})", status=413
        )
    try:
        with received.path.open("rb") as file:
            tensors, _metadata = safetensors_tensors(file, received.size)
    except NotSafetensors as exc:
        raise InvalidSpec("file", f"not a safetensors file: {exc}", "not_safetensors") from exc
    shape = _input_shape(spec, tensors, input_shape)
    outputs = tensors["output.weight"].shape[0]
    _check_fit(spec, tensors, shape, outputs)
    count = parameter_count(spec, shape, outputs)
    if count > limits.max_model_parameters:
        raise InvalidSpec("file", f"{count} parameters, over `max_model_parameters` ({limits.max_model_parameters})")
    model_id = str(uuid.uuid4())
    store.put(model_weights_key(model_id), received.path.read_bytes())
    return repository.add(
        session,
        Model(
            id=model_id,
            owner=owner,
            name=name,
            source="upload",
            model=spec.model_dump(mode="json"),
            input_shape=list(shape),
            outputs=outputs,
            parameters=count,
            size_bytes=received.size,
            checksum=received.checksum,
            predictable=False,
        ),
    )


def _model_spec(text: str) -> ModelSpec:
    try:
        return ModelSpec.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidSpec("model", f"not JSON: {exc}") from None
    except ValidationError as exc:
        raise invalid_fields(exc, "model") from None


def _input_shape(spec: ModelSpec, tensors: dict[str, TensorInfo], given: str | None) -> tuple[int, ...]:
    if "output.weight" not in tensors or len(tensors["output.weight"].shape) != 2:
        raise InvalidSpec("file", "no 2-D tensor `output.weight`: these are not the weights of a steadyfit model")
    if given is not None:
        try:
            shape = tuple(json.loads(given))
        except (json.JSONDecodeError, TypeError):
            raise InvalidSpec("input_shape", "a JSON list such as [3, 32, 32] or [64]") from None
        if len(shape) not in (1, 3) or not all(isinstance(n, int) and n > 0 for n in shape):
            raise InvalidSpec("input_shape", "(features,) or (channels, height, width) of positive integers")
        if (len(shape) == 3) != (spec.type == "cnn"):
            raise InvalidSpec("input_shape", "a cnn takes (channels, height, width); an mlp takes (features,)")
        return shape
    if spec.type == "cnn":
        raise InvalidSpec("input_shape", "a cnn's weights do not say its image size: give [channels, height, width]")
    first = tensors.get("hidden0.linear.weight" if spec.hidden_layers else "output.weight")
    if first is None or len(first.shape) != 2:
        raise InvalidSpec("file", "no 2-D tensor `hidden0.linear.weight`, the first layer of this model")
    return (first.shape[1],)


def _check_fit(spec: ModelSpec, tensors: dict[str, TensorInfo], input_shape: tuple[int, ...], outputs: int) -> None:
    expected = tensor_shapes(spec, input_shape, outputs)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"`{name}` is {list(tensors[name].shape)}, the model needs {list(expected[name])}"
        for name in expected
        if name in tensors and tensors[name].shape != expected[name]
    ]
    wrong += [
        f"`{name}` is {info.dtype}, a parameter must be a float"
        for name, info in tensors.items()
        if name in expected and not name.endswith(BATCH_NORM_STATISTICS) and info.dtype not in FLOATS
    ]
    problems = [
        *([f"missing {missing[:SHOWN]}"] if missing else []),
        *([f"not in this model {unexpected[:SHOWN]}"] if unexpected else []),
        *wrong[:SHOWN],
    ]
    if problems:
        raise InvalidSpec(
            "file", f"the weights do not fit the model for input {list(input_shape)}: " + "; ".join(problems)
        )


def from_job(session: Session, store: ArtifactStore, job_id: str, name: str | None, principal: Principal) -> Model:
    """Keep a succeeded job's weights (and its ONNX export, where it has one) as a model of the job's owner."""
    job = jobs.get(session, job_id, principal)
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"job `{job_id}` is {job.status}: only a succeeded job has weights to keep")
    weights = store.get(weights_key(job_id))
    if weights is None:
        raise Conflict(f"job `{job_id}` has no stored weights")
    tensors, _ = safetensors_tensors(io.BytesIO(weights), len(weights))
    card: dict[str, Any] = json.loads(safetensors_metadata(weights)[MODEL_CARD])
    spec = ModelSpec.model_validate(card["spec"]["model"])
    shape, outputs = tuple(card["input_shape"]), tensors["output.weight"].shape[0]
    model_id = str(uuid.uuid4())
    store.put(model_weights_key(model_id), weights)
    exported = store.get(onnx_key(job_id))
    if exported is not None:
        store.put(model_onnx_key(model_id), exported)
    return repository.add(
        session,
        Model(
            id=model_id,
            owner=job.owner,
            name=name or job.name,
            source="job",
            job_id=job_id,
            model=spec.model_dump(mode="json"),
            input_shape=list(shape),
            outputs=outputs,
            task=card["task"],
            class_names=card["class_names"] or None,
            parameters=parameter_count(spec, shape, outputs),
            size_bytes=len(weights),
            checksum="sha256:" + hashlib.sha256(weights).hexdigest(),
            predictable=exported is not None,
        ),
    )


def get(session: Session, model_id: str, principal: Principal) -> Model:
    """The model, if this caller may see it; another owner's is a 404, as if it did not exist."""
    model = repository.get(session, model_id)
    if model is None or not principal.sees(model.owner):
        raise NotFound(f"no model `{model_id}`")
    return model


def delete(session: Session, model_id: str, principal: Principal) -> str:
    """Forget the model; returns the artifact prefix to remove once that is committed. A job that already
    started from it keeps its own weights; one queued from it fails."""
    repository.delete(session, get(session, model_id, principal))
    return model_prefix(model_id)


def list_models(session: Session, principal: Principal, *, limit: int, cursor: str | None) -> ModelList:
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, scope=principal.scope, limit=limit, cursor=cursor)
    return ModelList(items=[ModelRead.model_validate(row) for row in rows], next_cursor=next_cursor)
