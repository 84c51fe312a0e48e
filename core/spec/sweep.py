"""A sweep's spec: the base job spec, the search space, the algorithm, the objective and the pruner.
Field names here are a public contract."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, cast

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict

from core.spec.job import MAXIMIZED_METRICS, JobSpec, PriorityName, SpecModel
from core.spec.labels import Labels

Algorithm = Literal["grid", "random", "tpe"]
PrunerName = Literal["none", "median", "hyperband", "asha"]
MAX_TRIALS = 1000
KINDS = ("values", "uniform", "log_uniform", "int_uniform")


class ParameterRead(TypedDict, total=False):
    """A parameter as the API returns it: only the kind that was given."""

    values: Annotated[list[JsonValue], Field(description="The values tried, as listed.")]
    uniform: Annotated[tuple[float, float], Field(description="`[low, high]` of a uniform float.")]
    log_uniform: Annotated[tuple[float, float], Field(description="`[low, high]` of a log-uniform float.")]
    int_uniform: Annotated[tuple[int, int], Field(description="`[low, high]` of an integer, both ends included.")]


class ParameterSpec(SpecModel):
    """Where one parameter's values come from: exactly one of the four fields."""

    # Lax, so that a JSON `[low, high]` list is the tuple of a range; its ends are strict numbers.
    model_config = ConfigDict(strict=False)

    values: list[JsonValue] | None = Field(
        None,
        min_length=1,
        max_length=MAX_TRIALS,
        description="These values exactly (any JSON, e.g. `[0.0, 0.2]` or `[[64], [128, 64]]`); the only kind "
        "`grid` accepts.",
    )
    uniform: tuple[StrictFloat, StrictFloat] | None = Field(None, description="`[low, high]`: a float drawn uniformly.")
    log_uniform: tuple[StrictFloat, StrictFloat] | None = Field(
        None, description="`[low, high]`, low > 0: a float whose logarithm is drawn uniformly."
    )
    int_uniform: tuple[StrictInt, StrictInt] | None = Field(
        None, description="`[low, high]`: an integer, both ends included."
    )

    @model_validator(mode="after")
    def _check(self) -> ParameterSpec:
        given = [
            kind for kind in ("values", "uniform", "log_uniform", "int_uniform") if getattr(self, kind) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of `values`, `uniform`, `log_uniform` and `int_uniform`")
        if self.values is not None:
            encoded = [json.dumps(value, sort_keys=True) for value in self.values]
            if len(set(encoded)) != len(encoded):
                raise ValueError("`values` lists a value twice")
            return self
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"`{given[0]}` needs finite bounds with low < high")
        if self.log_uniform is not None and low <= 0:
            raise ValueError("`log_uniform` needs low > 0")
        return self

    @model_serializer(mode="plain")
    def _only_the_given_kind(self) -> ParameterRead:
        return cast(ParameterRead, {kind: getattr(self, kind) for kind in KINDS if getattr(self, kind) is not None})

    @property
    def bounds(self) -> tuple[float, float]:
        """A range's `[low, high]` (not for `values`)."""
        bounds = self.uniform or self.log_uniform or self.int_uniform
        assert bounds is not None, "`values` has no bounds"
        return bounds

    def corners(self) -> list[Any]:
        """What must be a valid spec value: every listed value, or both ends of a range and one point
        inside it (off the integers, so that a float range on an integer field is caught)."""
        if self.values is not None:
            return list(self.values)
        low, high = self.bounds
        if self.int_uniform is not None:
            return [int(low), int(high)]
        inside = math.sqrt(low * high) if self.log_uniform is not None else low + (high - low) / math.pi
        return [low, high, inside]


class ObjectiveSpec(SpecModel):
    metric: str = Field("val_loss", description="A per-epoch metric of the job's task, e.g. val_loss or val_accuracy.")
    mode: Literal["min", "max", "auto"] = Field(
        "auto", description="`auto` maximizes accuracy/precision/recall/F1/R² and minimizes the rest."
    )

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        maximize = self.mode == "max" or (self.mode == "auto" and self.metric in MAXIMIZED_METRICS)
        return "maximize" if maximize else "minimize"


class PrunerSpec(SpecModel):
    """Stops unpromising trials early from their per-epoch objective (`stop_reason: pruned`)."""

    name: PrunerName = Field(
        "none",
        description="`median` (below the median of finished trials at the same epoch), `hyperband`, or `asha` "
        "(asynchronous successive halving).",
    )
    min_epochs: int = Field(
        1,
        ge=1,
        le=100_000,
        description="Epochs every trial trains before it may be pruned (Hyperband/ASHA's first rung).",
    )
    reduction_factor: int = Field(
        3, ge=2, le=100, description="hyperband/asha: 1 in `reduction_factor` trials goes on at each rung."
    )
    startup_trials: int = Field(5, ge=0, le=MAX_TRIALS, description="median: trials that finish before it prunes.")


class SweepCreate(Labels):
    """A search: trials of `base` with the `parameters` set by the algorithm, ranked by the objective. Its
    trials are jobs in its `project`, with its `tags`."""

    name: str | None = Field(None, min_length=1, max_length=180, description="A label for people.")
    base: JobSpec = Field(description="A job spec as in POST /v1/jobs; each trial is this spec with its parameters.")
    priority: PriorityName = Field(
        "normal", description="Every trial's priority, as a job's `priority` (the base spec's is replaced by it)."
    )
    parameters: dict[str, ParameterSpec] = Field(
        min_length=1,
        max_length=32,
        description="The search space, keyed by dotted spec paths such as `model.dropout` or `optimizer.lr`.",
    )
    algorithm: Algorithm = Field("tpe", description="`grid`, `random` or `tpe` (Bayesian optimization).")
    objective: ObjectiveSpec = Field(
        default_factory=lambda: ObjectiveSpec(),
        description="A trial's objective is this metric at its best epoch (the one whose weights are kept).",
    )
    max_trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="Trials in all; `grid` defaults to the whole grid, the others need it."
    )
    max_parallel: int = Field(1, ge=1, le=64, description="Trials queued or running at once.")
    pruner: PrunerSpec = Field(
        default_factory=lambda: PrunerSpec(), description="Stops unpromising trials early; `none` by default."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the sampling, so a sweep can be repeated.")
    warm_start: bool = Field(
        False,
        description="`grid` of one parameter only: its values are tried one at a time in the order listed, each "
        "trial starting from the kept weights of the last one that succeeded (as glmnet computes a path).",
    )

    @model_validator(mode="after")
    def _warm_start_walks_one_list_in_order(self) -> SweepCreate:
        if self.warm_start and (self.algorithm != "grid" or len(self.parameters) != 1 or self.max_parallel != 1):
            raise ValueError("`warm_start` needs `algorithm: grid`, one parameter and `max_parallel: 1`")
        return self

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.values) if p.values is not None else 0 for p in self.parameters.values())

    @property
    def trial_budget(self) -> int:
        return self.max_trials if self.max_trials is not None else self.grid_size

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial may train (the pruners' largest resource)."""
        swept = self.parameters.get("training.epochs")
        if swept is None:
            return self.base.training.epochs
        candidates = swept.values if swept.values is not None else list(swept.bounds)
        return max(int(value) for value in candidates if isinstance(value, int | float))
