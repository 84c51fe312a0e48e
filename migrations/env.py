"""Alembic environment. The URL comes from the caller (core.db.migrate) or from STEADYFIT_ settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from core.db.models import Base
from core.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        # render_as_batch lets ALTERs work on SQLite, which cannot alter most columns in place.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
