"""GET /healthz: is the service able to take and run jobs?"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from core.db.engine import Database
from core.queue import TaskQueue

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

State = Literal["ok", "down"]


class Health(BaseModel):
    status: State = Field(description="`ok` when both parts below are.")
    database: State = Field(description="Whether the database answers.")
    broker: State = Field(description="Whether the message broker answers.")


def _state(check: str, probe: object) -> State:
    try:
        probe()  # type: ignore[operator]
    except Exception as exc:
        log.warning("health check: %s is down: %s", check, exc)
        return "down"
    return "ok"


def _check(database: Database, queue: TaskQueue) -> Health:
    db, broker = _state("database", database.ping), _state("broker", queue.ping)
    return Health(status="ok" if db == broker == "ok" else "down", database=db, broker=broker)


@router.get(
    "/healthz",
    operation_id="health",
    responses={503: {"model": Health, "description": "The database or the broker is down."}},
)
async def health(request: Request, response: Response) -> Health:
    """200 when the database and the broker answer, 503 naming the part that is down otherwise."""
    result = await run_in_threadpool(_check, request.app.state.database, request.app.state.queue)
    if result.status != "ok":
        response.status_code = 503
    return result
