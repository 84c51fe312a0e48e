"""All SQL about models."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.db.models import Model
from core.db.pagination import owned_page


def add(session: Session, model: Model) -> Model:
    session.add(model)
    session.flush()
    return model


def get(session: Session, model_id: str) -> Model | None:
    return session.get(Model, model_id)


def list_page(
    session: Session, *, scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Model], str | None]:
    """A page of the models of owner `scope` (of everyone's with None), newest first."""
    return owned_page(session, Model, scope, limit, cursor)


def delete(session: Session, model: Model) -> None:
    session.delete(model)
    session.flush()
