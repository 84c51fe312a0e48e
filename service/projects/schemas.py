"""What the projects API reads. Field names here are a public contract."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProjectRead(BaseModel):
    project: str = Field(description="The project's name, as jobs give it in `project`.", examples=["vision"])
    jobs: int = Field(description="How many of the caller's jobs are in it (an admin: everyone's).")


class ProjectList(BaseModel):
    items: list[ProjectRead] = Field(description="Every project that has a job, by name.")
