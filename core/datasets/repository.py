"""All SQL about uploaded data sets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Dataset
from core.db.pagination import owned_page


def add(session: Session, dataset: Dataset) -> Dataset:
    session.add(dataset)
    session.flush()
    return dataset


def get(session: Session, dataset_id: str) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def list_page(
    session: Session, *, scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Dataset], str | None]:
    """A page of the data sets of owner `scope` (of everyone's with None)."""
    return owned_page(session, Dataset, scope, limit, cursor)


def delete(session: Session, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()


def stored_bytes(session: Session, owner: str) -> int:
    """What the owner's data sets take in the artifact store."""
    total = session.scalar(select(func.coalesce(func.sum(Dataset.stored_bytes), 0)).where(Dataset.owner == owner))
    return int(total or 0)
