"""What the models API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description='Start a job from it with `"init_from": {"model_id": ...}`.')
    owner: str = Field(description="Who it belongs to.")
    name: str | None = Field(description="A label for people, if one was given.")
    source: Literal["upload", "job"] = Field(description="Uploaded with POST /v1/models, or saved from a job.")
    job_id: str | None = Field(description="The job it was saved from.")
    model: dict[str, Any] = Field(description="The architecture: a job spec's `model` block.")
    input_shape: list[int] = Field(description="What the network takes: (features,) or (channels, height, width).")
    outputs: int = Field(description="The output layer's width.")
    task: Literal["classification", "regression"] | None = Field(description="Known for a job's model.")
    class_names: list[str] | None = Field(description="A classification job's classes, in output order.")
    parameters: int = Field(description="Trainable parameters.")
    size_bytes: int = Field(description="Size of the weights file.")
    checksum: str = Field(description="`sha256:` and the hex digest of the weights file.")
    predictable: bool = Field(
        description="It has an ONNX export (saved from a job), so POST /v1/models/{id}/predict answers."
    )
    created_at: datetime = Field(description="When it was uploaded or saved.")


class ModelList(BaseModel):
    items: list[ModelRead] = Field(description="This page's models, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ModelFromJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="A label for people.")
