"""DropConnect (Wan et al., 2013): in training, each hidden Linear layer's weights, not its outputs, are zeroed
with probability p for each batch and the rest scaled by 1/(1-p); the plain layer in evaluation
(`dropout_type: dropconnect`). The layer keeps its class's parameters, so the state dict is the same."""

from __future__ import annotations

from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer
from workers.training.regularizers.dropout import hidden_rates


class DropConnectLinear(nn.Linear):
    p: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return super().forward(x)
        keep = torch.rand_like(self.weight) >= self.p
        return F.linear(x, self.weight * keep / (1 - self.p), self.bias)


class DropConnect(Regularizer):
    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        rates = hidden_rates(spec, "dropconnect")
        return None if rates is None else cls(rates)

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        for i, rate in enumerate(self.rates):
            linear = model.get_submodule(f"hidden{i}.linear")
            linear.__class__ = DropConnectLinear  # the same parameters, another forward
            assert isinstance(linear, DropConnectLinear)
            linear.p = rate
        return model
