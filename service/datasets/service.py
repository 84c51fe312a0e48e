"""Uploading, reading and deleting data sets."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore, dataset_key, dataset_prefix
from core.datasets import repository, storage
from core.db.models import Dataset
from core.errors import ApiError, InvalidSpec, NotFound, invalid_cursor_is_422
from core.settings import Settings
from core.tenants.limits import Limits
from core.tenants.principal import Principal
from service.datasets.arrays import ImageOptions, is_archive, read_archive
from service.datasets.parsing import Caps, Decoded, Imputation, TableError, detect_format, parse
from service.datasets.schemas import DatasetList, DatasetRead


def caps(settings: Settings, limits: Limits) -> Caps:
    return Caps(
        max_rows=limits.max_upload_rows,
        max_columns=settings.max_upload_columns,
        max_categories=settings.max_categories,
        max_encoded_bytes=settings.max_encoded_bytes,
    )


def upload(
    session: Session,
    store: ArtifactStore,
    *,
    owner: str,
    received: storage.Received,
    filename: str | None,
    name: str | None,
    target: str | None,
    task: Literal["classification", "regression"],
    impute: Imputation,
    images: ImageOptions,
    limits: Limits,
    caps: Caps,
) -> Dataset:
    """Parse and encode the table (or read the arrays or images), store its arrays within the owner's quota, and
    record it."""
    max_bytes = limits.max_upload_bytes
    if received.size > max_bytes:  # the server-wide cap stops a larger body while it streams (service/limits.py)
        raise ApiError(
            f"the file is {received.size} bytes, over the limit `max_upload_bytes` of {max_bytes}", status=413
        )
    try:
        decoded = _decoded(received, target, task, impute, images, caps)
    except TableError as exc:
        raise ApiError(str(exc), status=exc.status) from exc
    encoded = decoded.encoded
    data = storage.serialized(
        storage.StoredArrays(encoded.features, encoded.target, encoded.feature_names, encoded.class_names)
    )
    _check_quota(session, owner, len(data), limits.max_storage_bytes)
    dataset_id = str(uuid.uuid4())
    store.put(dataset_key(dataset_id), data)
    return repository.add(
        session,
        Dataset(
            id=dataset_id,
            owner=owner,
            name=name,
            filename=filename,
            format=decoded.format,
            task=task,
            target=decoded.target,
            rows=len(encoded.target),
            columns=decoded.columns,
            feature_names=encoded.feature_names,
            categorical_columns=encoded.categorical_columns,
            input_shape=decoded.input_shape,
            class_counts=encoded.class_counts or None,
            imputation=impute,
            size_bytes=received.size,
            stored_bytes=len(data),
            checksum=received.checksum,
        ),
    )


def _decoded(
    received: storage.Received,
    target: str | None,
    task: Literal["classification", "regression"],
    impute: Imputation,
    images: ImageOptions,
    caps: Caps,
) -> Decoded:
    head = received.head()
    if is_archive(head):
        return read_archive(received.path, task, images, caps)
    if target is None:
        raise InvalidSpec("target", "a table needs `target`, the column to predict", "missing")
    columns, encoded = parse(received.path, target, task, impute, caps)
    return Decoded(detect_format(head), columns, target, encoded, None)


def _check_quota(session: Session, owner: str, size: int, quota: int) -> None:
    used = repository.stored_bytes(session, owner)
    if used + size > quota:
        raise ApiError(
            f"stored, this data set takes {size} bytes; with the {used} of your other data sets that is over the "
            f"limit `max_storage_bytes` of {quota}. Delete some (DELETE /v1/datasets/{{id}}) or ask for more",
            status=413,
        )


def get(session: Session, dataset_id: str, principal: Principal) -> Dataset:
    """The data set, if this caller may see it; another owner's is a 404, as if it did not exist."""
    dataset = repository.get(session, dataset_id)
    if dataset is None or not principal.sees(dataset.owner):
        raise NotFound(f"no data set `{dataset_id}`")
    return dataset


def delete(session: Session, dataset_id: str, principal: Principal) -> str:
    """Forget the data set; returns the artifact prefix to remove once that is committed.

    Jobs keep their spec. One already training has its data in memory and finishes; one that starts later
    (queued, or resumed after a lost worker) fails with `data set … no longer exists`.
    """
    repository.delete(session, get(session, dataset_id, principal))
    return dataset_prefix(dataset_id)


def list_datasets(session: Session, principal: Principal, *, limit: int, cursor: str | None) -> DatasetList:
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, scope=principal.scope, limit=limit, cursor=cursor)
    return DatasetList(items=[DatasetRead.model_validate(row) for row in rows], next_cursor=next_cursor)
