"""Request-scoped dependencies, as Annotated aliases so a handler's signature reads like documentation.

Those that only look something up are `async def`: FastAPI runs a plain `def` dependency in its thread pool,
a hop per dependency per request for what is a dictionary lookup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore
from core.db.engine import Database
from core.queue import TaskQueue
from core.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    with database.session() as session:
        yield session


async def get_artifacts(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts


async def get_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.app.state.queue
    return queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": commit before the response is sent, so a client never reads a 202 for a row
# that is not there yet (and the task is queued by then too).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
