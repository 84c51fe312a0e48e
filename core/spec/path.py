"""A regularization path's spec: one strength, the values it takes, and the base job spec. A path runs as a
grid sweep of that one parameter (`as_sweep`), so it is scheduled, admitted, cancelled and recovered as a
sweep is; its summary (the best value and the 1-SE one) is what makes it a path. Field names here are a
public contract."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictFloat, model_validator

from core.spec.job import JobSpec, SpecModel
from core.spec.sweep import ParameterSpec, SweepCreate

Strength = Literal["regularization.l1", "regularization.l2", "model.dropout", "optimizer.weight_decay"]
DEFAULT_POINTS = 10
MAX_POINTS = 50


class GridSpec(SpecModel):
    """`points` values from `high` down to `low`: evenly spaced, or evenly in their logarithm."""

    scale: Literal["log", "linear"] = Field("log", description="`log`: evenly spaced logarithms (needs low > 0).")
    low: StrictFloat = Field(ge=0.0, description="The weakest strength.")
    high: StrictFloat = Field(gt=0.0, description="The strongest strength.")
    points: int = Field(DEFAULT_POINTS, ge=2, le=MAX_POINTS, description="How many values, both ends included.")

    @model_validator(mode="after")
    def _check(self) -> GridSpec:
        if not self.low < self.high:
            raise ValueError("`low` must be below `high`")
        if self.scale == "log" and self.low <= 0:
            raise ValueError("a `log` grid needs `low` > 0")
        return self

    def values(self) -> list[float]:
        """From `high` down to `low`, strongest first, rounded to 6 significant digits for people to read."""
        steps = self.points - 1
        if self.scale == "log":
            low, high = math.log10(self.low), math.log10(self.high)
            raw = [10 ** (high - (high - low) * i / steps) for i in range(self.points)]
        else:
            raw = [self.high - (self.high - self.low) * i / steps for i in range(self.points)]
        return [float(f"{value:.6g}") for value in raw]


class PathCreate(SpecModel):
    """Train `base` once per value of one regularization strength, and compare the points."""

    name: str | None = Field(None, min_length=1, max_length=180, description="A label for people.")
    base: JobSpec = Field(description="A job spec as in POST /v1/jobs; each point is this spec with the strength set.")
    parameter: Strength = Field(description="The strength that varies along the path.")
    values: list[StrictFloat] | None = Field(
        None,
        min_length=2,
        max_length=MAX_POINTS,
        description="The strengths to train at (with `warm_start`, in this order). Give `values` or `grid`.",
    )
    grid: GridSpec | None = Field(None, description="The strengths as a grid, from `high` down to `low`.")
    warm_start: bool = Field(
        False,
        description="Each point starts from the previous point's kept weights (as glmnet computes its paths), "
        "so the points train one at a time; otherwise from scratch, up to `max_parallel` at once.",
    )
    max_parallel: int = Field(4, ge=1, le=64, description="Points queued or running at once (1 with `warm_start`).")

    @model_validator(mode="after")
    def _one_source_of_values(self) -> PathCreate:
        if (self.values is None) == (self.grid is None):
            raise ValueError("give exactly one of `values` and `grid`")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("`values` lists a value twice")
        return self

    @property
    def strengths(self) -> list[float]:
        """The values in the order the points run."""
        if self.values is not None:
            return list(self.values)
        assert self.grid is not None, "a path has `values` or a `grid`"
        return self.grid.values()

    def as_sweep(self) -> SweepCreate:
        """The grid sweep that runs the path: one trial per value, ranked by validation loss, at the base spec's
        priority."""
        return SweepCreate(
            name=self.name,
            base=self.base,
            priority=self.base.priority,
            parameters={self.parameter: ParameterSpec(values=list(self.strengths))},
            algorithm="grid",
            max_parallel=1 if self.warm_start else self.max_parallel,
            warm_start=self.warm_start,
        )
