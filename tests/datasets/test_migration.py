"""Migration 0010 counts the data sets stored before it against their owner's storage quota."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from core.db.migrate import MIGRATIONS_DIR, upgrade


def test_data_sets_stored_before_the_quota_count_their_arrays_bytes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'steadyfit.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0009")
    engine = create_engine(url)
    insert = text(
        "INSERT INTO datasets (id, owner, format, task, target, rows, columns, feature_names, categorical_columns,"
        " imputation, size_bytes, checksum, created_at) VALUES (:id, 'alice', 'csv', :task, 'y', :rows, '[]',"
        " :features, '[]', 'none', 1, 'sha256:', '2026-12-01 00:00:00')"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"id": "c", "task": "classification", "rows": 10, "features": '["a", "b", "c"]'})
        connection.execute(insert, {"id": "r", "task": "regression", "rows": 7, "features": '["a"]'})

    upgrade(url)

    with engine.connect() as connection:
        stored: dict[str, int] = dict(connection.execute(text("SELECT id, stored_bytes FROM datasets")).all())
    engine.dispose()
    # classification: 10 rows x (3 float32 features + an int64 class); regression: 7 x (1 float32 + a float32)
    assert stored == {"c": 10 * (3 * 4 + 8), "r": 7 * (4 + 4)}
