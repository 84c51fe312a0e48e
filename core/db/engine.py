"""The database handle: one engine and session factory per process, built at start-up, never at import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout waits out the brief write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    def __init__(self, url: str, *, pooled: bool = True) -> None:
        """`pooled=False` holds no connection between uses: for a process that forks (a worker's parent),
        whose children must not inherit an open connection."""
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["connect_args"] = {"connect_timeout": 3}
            if pooled:
                kwargs.update(pool_size=10, max_overflow=20)
        if not pooled:
            kwargs["poolclass"] = NullPool
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside a transaction: no BEGIN and no COMMIT, two round trips fewer per poll. Under READ
        # COMMITTED each statement sees its own snapshot anyway, inside a transaction or not.
        self.readers = sessionmaker(self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        event.listen(self.sessions, "after_commit", _run_pending)
        event.listen(self.sessions, "after_soft_rollback", _drop_pending)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def autocommit_session(self) -> Iterator[Session]:
        """Each statement commits on its own: for reads (nothing to commit) and single-statement writes."""
        with self.readers() as session:
            yield session

    def single_statement_session(self) -> AbstractContextManager[Session]:
        """For a write that is one statement on PostgreSQL, atomic there without a transaction, so one round
        trip instead of three; elsewhere an ordinary transaction."""
        return self.autocommit_session() if self.engine.dialect.name == "postgresql" else self.session()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once this session's transaction has committed, and never if it rolls back.

    Used to send broker messages only for rows a worker can already see.
    """
    session.info.setdefault("after_commit", []).append(action)


def _run_pending(session: Session) -> None:
    for action in session.info.pop("after_commit", []):
        action()


def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop("after_commit", None)
