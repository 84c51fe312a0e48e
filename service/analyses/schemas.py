"""What the analyses API takes and returns. Field names here are a public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.spec.analysis import Kind
from core.spec.job import SpecModel

AnalysisStatusValue = Literal["queued", "running", "succeeded", "failed"]


class AnalysisCreate(SpecModel):
    kind: Kind = Field(
        description="`landscape` (loss slices, Hessian eigenvalue and trace, sharpness), `lr_range` (a "
        "learning-rate range test of the job's spec), `onnx` (export the kept model for predictions; a job "
        "that succeeded before exports existed has none), or `pruning` / `confusion` again."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The kind's options (all have defaults): landscape `seed`, `points`, `grid`, `iterations`, "
        "`probes`, `epsilon`, `ascent_steps`; lr_range `min_lr`, `max_lr`, `steps`.",
    )


class AnalysisRead(BaseModel):
    job_id: str = Field(description="The job analysed.")
    kind: Kind = Field(description="What was computed.")
    status: AnalysisStatusValue = Field(
        description="`queued`, `running`, then `succeeded` with `result`, or `failed` with `error` (the job itself "
        "stays `succeeded`)."
    )
    options: dict[str, Any] = Field(description="The options it was asked for with (defaults left out).")
    result: dict[str, Any] | None = Field(description="The analysis's numbers, once it has succeeded; see each route.")
    error: str | None = Field(description="Why it failed, when it did.")
    created_at: datetime = Field(description="When it was first asked for.")
    updated_at: datetime = Field(description="Its last change of status.")


class AnalysisList(BaseModel):
    job_id: str = Field(description="The job.")
    items: list[AnalysisRead] = Field(description="Its analyses, by kind.")
