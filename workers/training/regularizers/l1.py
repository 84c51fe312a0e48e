"""L1: adds l1·Σ|w| to the loss (gradient l1·sign(w)), which drives weights to exactly zero. With `l2` on as
well, the two together are the elastic net."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class L1(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        return cls(spec.regularization.l1) if spec.regularization.l1 > 0 else None

    def penalty(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.strength * torch.stack([w.abs().sum() for w in weights]).sum()
