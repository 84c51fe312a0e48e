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


def upload(
    session: Session,
    store: ArtifactStore,
    *,
    data: bytes,
    filename: str | None,
    name: str | None,
    target: str,
    task: Literal["classification", "regression"],
    impute: Imputation,
    max_rows: int,
) -> Dataset:
    """Parse and encode the table, store its arrays, and record it."""
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


def get(session: Session, dataset_id: str) -> Dataset:
    dataset = repository.get(session, dataset_id)
    if dataset is None:
        raise NotFound(f"no data set `{dataset_id}`")
    return dataset


def list_datasets(session: Session, *, limit: int, cursor: str | None) -> DatasetList:
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, limit=limit, cursor=cursor)
    return DatasetList(items=[DatasetRead.model_validate(row) for row in rows], next_cursor=next_cursor)
