"""What an analysis of a job may be asked for with (POST /v1/jobs/{id}/analyses): each kind's options, their
defaults and bounds. The worker reads the same models, so a default is written once. Field names here are a
public contract."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.spec.job import SpecModel


class NoOptions(SpecModel):
    """`onnx`, `pruning` and `confusion` take no options."""


class LandscapeOptions(SpecModel):
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the random directions and vectors.")
    points: int = Field(21, ge=3, le=101, description="Points of each 1-D slice, from -1 to 1.")
    grid: int = Field(11, ge=3, le=31, description="Points per side of the 2-D slice.")
    iterations: int = Field(20, ge=1, le=200, description="Power-iteration steps for the top Hessian eigenvalue.")
    probes: int = Field(10, ge=1, le=200, description="Rademacher vectors of Hutchinson's trace estimate.")
    epsilon: float = Field(1e-3, gt=0, le=1, description="ε of ε-sharpness: the box is |δᵢ| ≤ ε·(|θᵢ| + 1).")
    ascent_steps: int = Field(10, ge=1, le=200, description="Projected ascent steps that approach ε-sharpness.")


class LrRangeOptions(SpecModel):
    min_lr: float = Field(1e-7, gt=0, description="The rate of the first step.")
    max_lr: float = Field(10.0, gt=0, le=100, description="The rate of the last step.")
    steps: int = Field(200, ge=10, le=2000, description="Batches, one per rate.")

    @model_validator(mode="after")
    def _rising(self) -> LrRangeOptions:
        if self.min_lr >= self.max_lr:
            raise ValueError("`min_lr` must be below `max_lr`")
        return self


OPTIONS: dict[str, type[SpecModel]] = {
    "onnx": NoOptions,
    "pruning": NoOptions,
    "confusion": NoOptions,
    "landscape": LandscapeOptions,
    "lr_range": LrRangeOptions,
}
Kind = Literal["onnx", "pruning", "confusion", "landscape", "lr_range"]
