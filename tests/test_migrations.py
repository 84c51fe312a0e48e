"""The Alembic migrations build exactly the schema the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from core.db.migrate import upgrade
from core.db.models import POSTGRES_ONLY_INDEXES, Base
from tests.fixtures import PG_SERVER, postgres_database


def declared(name: str | None, kind: str, _parents: object) -> bool:
    """What the models declare: all but the expression indexes made on PostgreSQL only."""
    return not (kind == "index" and name in POSTGRES_ONLY_INDEXES)


def drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": declared})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_postgres_schema_matches_the_models() -> None:
    with postgres_database() as name:
        url = f"{PG_SERVER}/{name}"
        upgrade(url)
        assert drift(url) == []


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'steadyfit.db'}"
    upgrade(url)
    upgrade(url)  # a second run (every `steadyfit serve` start) changes nothing
    assert drift(url) == []
