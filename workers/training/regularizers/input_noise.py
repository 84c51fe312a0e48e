"""Input noise: adds Gaussian noise of the given standard deviation to each training batch's (standardized)
inputs, drawn from torch's seeded generator; validation and test inputs are left clean."""

from __future__ import annotations

from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class InputNoise(Regularizer):
    def __init__(self, std: float) -> None:
        self.std = std

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        std = spec.regularization.input_noise
        return cls(std) if std > 0 else None

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs + self.std * torch.randn_like(inputs), targets
