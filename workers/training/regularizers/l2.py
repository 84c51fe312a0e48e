"""L2: adds l2·Σw² to the loss (gradient 2·l2·w), which shrinks every weight toward zero. Unlike the optimizer's
decoupled `weight_decay`, it is part of the loss, so Adam scales it with the rest of the gradient."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class L2(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        strength = spec.regularization.l2
        return cls(strength) if strength > 0 else None

    def penalty(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.strength * torch.stack([w.square().sum() for w in weights]).sum()
