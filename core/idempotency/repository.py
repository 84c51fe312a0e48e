"""All SQL about idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import IdempotencyKey


def forget_expired(session: Session) -> None:
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))


def claim(session: Session, owner: str, key: str, route: str, request_hash: str, expires_at: datetime) -> bool:
    """Insert the key unless it exists. On PostgreSQL a concurrent insert of the same key waits here for
    the other transaction: if it commits this returns False, if it rolls back this one inserts."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(IdempotencyKey)
        .values(
            owner=owner, key=key, route=route, request_hash=request_hash, created_at=utcnow(), expires_at=expires_at
        )
        .on_conflict_do_nothing(index_elements=["owner", "key", "route"])
        .returning(IdempotencyKey.key)
    )
    return session.execute(statement).first() is not None


def get(session: Session, owner: str, key: str, route: str) -> IdempotencyKey | None:
    statement = select(IdempotencyKey).where(
        IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.route == route
    )
    return session.execute(statement.execution_options(populate_existing=True)).scalar_one_or_none()


def record(session: Session, owner: str, key: str, route: str, resource_id: str) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.route == route)
        .values(resource_id=resource_id)
    )
