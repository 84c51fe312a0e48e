"""Uploading and reading data sets."""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from sqlalchemy.orm import Session

from service.artifacts import ArtifactStore
from service.datasets import repository, storage
from service.datasets.parsing import Imputation, TableError, detect_format, encode, read_table
from service.datasets.schemas import DatasetList, DatasetRead
from service.db.models import Dataset
from service.errors import ApiError, NotFound, invalid_cursor_is_422
from service.tenants.principal import Principal


def upload(
    session: Session,
    store: ArtifactStore,
    *,
    owner: str,
    data: bytes,
    filename: str | None,
    name: str | None,
    target: str,
    task: Literal["classification", "regression"],
    impute: Imputation,
    max_rows: int,
    max_bytes: int,
) -> Dataset:
    """Parse and encode the table, store its arrays, and record it."""
    if len(data) > max_bytes:  # the server-wide cap stops a larger body while it streams (service/limits.py)
        raise ApiError(f"the file is {len(data)} bytes, over the limit `max_upload_bytes` of {max_bytes}", status=413)
    try:
        table = read_table(data, max_rows)
        encoded = encode(table, target, task, impute)
    except TableError as exc:
        raise ApiError(str(exc), status=exc.status) from exc
    dataset_id = str(uuid.uuid4())
    storage.save_arrays(
        store,
        dataset_id,
        storage.StoredArrays(encoded.features, encoded.target, encoded.feature_names, encoded.class_names),
    )
    return repository.add(
        session,
        Dataset(
            id=dataset_id,
            owner=owner,
            name=name,
            filename=filename,
            format=detect_format(data[:4096]),
            task=task,
            target=target,
            rows=table.rows,
            columns=table.names,
            feature_names=encoded.feature_names,
            categorical_columns=encoded.categorical_columns,
            class_counts=encoded.class_counts or None,
            imputation=impute,
            size_bytes=len(data),
            checksum="sha256:" + hashlib.sha256(data).hexdigest(),
        ),
    )


def get(session: Session, dataset_id: str, principal: Principal) -> Dataset:
    """The data set, if this caller may see it; another owner's is a 404, as if it did not exist."""
    dataset = repository.get(session, dataset_id)
    if dataset is None or not principal.sees(dataset.owner):
        raise NotFound(f"no data set `{dataset_id}`")
    return dataset


def list_datasets(session: Session, principal: Principal, *, limit: int, cursor: str | None) -> DatasetList:
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, scope=principal.scope, limit=limit, cursor=cursor)
    return DatasetList(items=[DatasetRead.model_validate(row) for row in rows], next_cursor=next_cursor)
