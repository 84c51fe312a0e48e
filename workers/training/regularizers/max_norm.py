"""Max-norm: after each optimizer step, rescale each unit's incoming weight vector (a Linear row, a Conv
filter) whose L2 norm exceeds the limit back to it; vectors within the limit are left alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class MaxNorm(Regularizer):
    def __init__(self, limit: float) -> None:
        self.limit = limit

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        limit = spec.regularization.max_norm
        return None if limit is None else cls(limit)

    @torch.no_grad()
    def after_step(self, weights: Sequence[torch.Tensor]) -> None:
        for weight in weights:
            weight.renorm_(p=2, dim=0, maxnorm=self.limit)
