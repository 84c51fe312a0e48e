"""Label smoothing: the classification loss trains toward softened targets. Cross-entropy mixes the one-hot
target with the uniform distribution, (1-s)·onehot + s/K; binary cross-entropy moves each binary target
toward 0.5, t·(1-s) + s/2 (`losses.py` computes both)."""

from __future__ import annotations

from typing import Self

from core.spec.job import JobSpec, LossSpec
from workers.training.losses import LossFn, build_loss
from workers.training.regularizers.base import Regularizer


class LabelSmoothing(Regularizer):
    def __init__(self, loss: LossSpec, smoothing: float) -> None:
        self.loss, self.smoothing = loss, smoothing

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        smoothing = spec.regularization.label_smoothing
        return cls(spec.loss_spec, smoothing) if smoothing > 0 else None

    def modify_loss(self, loss_fn: LossFn, n_classes: int) -> LossFn:
        # The smoothed form of the spec's loss replaces the plain one: PyTorch smooths inside its kernel.
        return build_loss(self.loss, n_classes, self.smoothing)
