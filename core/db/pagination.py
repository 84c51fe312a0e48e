"""Keyset pagination, newest first, on (created_at, id): every page costs the same however deep it is."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, literal, select, tuple_
from sqlalchemy.orm import Session

Row = TypeVar("Row")
Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


class InvalidCursor(ValueError):
    pass


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, row_id = raw.split("|", 1)
        return datetime.fromisoformat(created), row_id
    except ValueError as exc:
        raise InvalidCursor("not a cursor this API returned") from exc


def encode_keys(order: str, values: Sequence[Any]) -> str:
    """A cursor of a page in another order than newest first: the order's name and the last row's keys."""
    raw = json.dumps([order, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keys(cursor: str, order: str) -> list[Any]:
    """The keys in a cursor of `encode_keys` made in the same `order`."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidCursor("not a cursor this API returned") from exc
    if not isinstance(decoded, list) or not decoded or decoded[0] != order:
        raise InvalidCursor(f"not a cursor of a list in the order `{order}`")
    return decoded[1:]


def keyset(
    query: Query, keys: Sequence[ColumnElement[Any]], descending: bool, limit: int, after: Sequence[Any] | None
) -> Query:
    """`query` ordered by `keys` (all one way; the last one unique), from after the row whose keys are `after`,
    one row more than `limit` (to tell if more follow)."""
    query = query.order_by(*(key.desc() if descending else key.asc() for key in keys)).limit(limit + 1)
    if after is not None:
        bound = tuple_(*(literal(value, key.type) for key, value in zip(keys, after, strict=True)))
        query = query.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    return query


def newest_first_page(
    session: Session, query: Select[Any], model: type[Row], limit: int, cursor: str | None
) -> tuple[Sequence[Row], str | None]:
    """One page of `query` (whose rows are `model` instances) and the cursor of the next page, if any."""
    return page_of(session.scalars(newest_first(query, model, limit, cursor)).all(), limit)


def owned_page(
    session: Session, model: type[Row], scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Row], str | None]:
    """A page of the `model` rows of owner `scope` (everyone's with None), newest first."""
    owned: Any = model
    query = select(model) if scope is None else select(model).where(owned.owner == scope)
    return newest_first_page(session, query, model, limit, cursor)


def newest_first(query: Query, model: type[Any], limit: int, cursor: str | None) -> Query:
    """`query` ordered newest first, from after `cursor`, one row more than `limit` (to tell if more follow)."""
    columns: Any = model
    query = query.order_by(columns.created_at.desc(), columns.id.desc()).limit(limit + 1)
    if cursor is not None:
        created, row_id = decode_cursor(cursor)
        # A row-value comparison, which an index on (created_at, id) can seek to; the equivalent OR of
        # two conditions would be a filter that reads every newer row first.
        after = tuple_(literal(created, columns.created_at.type), literal(row_id, columns.id.type))
        query = query.where(tuple_(columns.created_at, columns.id) < after)
    return query


def page_of(rows: Sequence[Row], limit: int) -> tuple[Sequence[Row], str | None]:
    """The page among the rows of a `newest_first` query, and the next page's cursor (their rows, model
    instances or named rows, have `created_at` and `id`)."""
    if len(rows) <= limit:
        return rows, None
    last: Any = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.id)
