"""Mixup (Zhang et al., 2018): each training batch is replaced by λ·x + (1-λ)·x[π], a mix with a shuffled copy
of itself, λ drawn from Beta(alpha, alpha) once per batch, and its data loss is λ·L(out, y) + (1-λ)·L(out, y[π]): the
same mix of both rows' targets, for any loss and task (`augmentation.mixup` = alpha).

`transform_batch` draws λ and π and leaves them for the loss, which `modify_loss` wraps and which uses them
once: the next call (validation's, or the next batch's) is the plain loss again."""

from __future__ import annotations

from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.losses import LossFn, Reduction
from workers.training.regularizers.base import Regularizer


class Mixup(Regularizer):
    def __init__(self, alpha: float) -> None:
        self.beta = torch.distributions.Beta(alpha, alpha)
        self.alpha = alpha
        self.pending: tuple[float, torch.Tensor] | None = None

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        alpha = spec.augmentation.mixup if spec.augmentation else 0.0
        return cls(alpha) if alpha > 0 else None

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        share = float(self.beta.sample())
        order = torch.randperm(len(inputs), device=inputs.device)
        self.pending = (share, order)
        return share * inputs + (1 - share) * inputs[order], targets

    def modify_loss(self, loss_fn: LossFn, n_classes: int) -> LossFn:
        def mixed(outputs: torch.Tensor, targets: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
            if self.pending is None:
                return loss_fn(outputs, targets, reduction)
            (share, order), self.pending = self.pending, None
            own, other = loss_fn(outputs, targets, reduction), loss_fn(outputs, targets[order], reduction)
            return share * own + (1 - share) * other

        return mixed

    def epoch_metrics(self) -> dict[str, float]:
        return {"augmentation_mixup": self.alpha}
