"""Gradient clipping: before each optimizer step, scale all gradients down together so that their global
L2 norm is at most the limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import torch
from torch.nn.utils import clip_grads_with_norm_, get_total_norm

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class GradientClipping(Regularizer):
    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        max_norm = spec.regularization.gradient_clip_norm
        return None if max_norm is None else cls(max_norm)

    def after_backward(self, params: Sequence[torch.Tensor]) -> None:
        total = get_total_norm([p.grad for p in params if p.grad is not None])
        clip_grads_with_norm_(params, self.max_norm, total)
