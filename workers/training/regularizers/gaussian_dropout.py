"""Gaussian dropout (Srivastava et al., 2014, section 10): in training, each hidden block's output is multiplied
by noise drawn from N(1, p/(1-p)), the variance of inverted dropout at rate p, with no value set to zero; the
identity in evaluation (`dropout_type: gaussian`)."""

from __future__ import annotations

import math
from typing import Self

import torch
from torch import nn

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer
from workers.training.regularizers.dropout import at_hidden_blocks, hidden_rates


class GaussianNoiseLayer(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p, self.std = p, math.sqrt(p / (1 - p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.std * torch.randn_like(x)) if self.training else x

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianDropout(Regularizer):
    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        rates = hidden_rates(spec, "gaussian")
        return None if rates is None else cls(rates)

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        return at_hidden_blocks(model, self.rates, GaussianNoiseLayer)
