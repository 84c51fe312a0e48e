"""What GET /v1/queue returns. Field names here are a public contract."""

from __future__ import annotations

from pydantic import BaseModel, Field

EXAMPLE = {
    "owners": [{"owner": "alice", "queued": 38, "running": 1}, {"owner": "bob", "queued": 0, "running": 1}],
    "queued": 38,
    "running": 2,
}


class OwnerQueueRead(BaseModel):
    owner: str = Field(description="The owner these jobs belong to.", examples=["alice"])
    queued: int = Field(description="Its jobs waiting for a worker.", examples=[38])
    running: int = Field(description="Its jobs training now.", examples=[1])


class QueueRead(BaseModel):
    owners: list[OwnerQueueRead] = Field(
        description="An admin: every owner with jobs queued or running, by name. Anyone else: only themselves."
    )
    queued: int = Field(description="Every owner's queued jobs together.", examples=[38])
    running: int = Field(description="Every owner's running jobs together.", examples=[2])
