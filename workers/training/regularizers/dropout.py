"""Dropout: input dropout before the first layer, and (with `dropout_type: standard`) dropout at the end of each
hidden block (after its activation and batch norm), at the rates `model.input_dropout` and `model.dropout` give.
The other types are regularizers of their own (alpha_dropout, gaussian_dropout, spatial_dropout, dropconnect).
Active in training, identity in evaluation; a dropout layer has no parameters, so the state dict is the same
with or without."""

from __future__ import annotations

from collections import OrderedDict
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class Dropout(nn.Module):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by 1/(1-p).

    On the CPU the mask takes 16 random bits per value from 64-bit random words: about three times faster
    than the bernoulli_ draw of nn.Dropout, which was the largest single cost of a small MLP's step. That
    rounds p to a multiple of 1/65536 (0.2 becomes 0.199997); the scale uses the rounded rate, so the
    expected output still equals the input. CUDA keeps PyTorch's fused kernel.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.is_cuda:
            return F.dropout(x, self.p, training=True)
        dropped = round(self.p * 65536)  # of every 65536 values of a 16-bit field, this many are dropped
        words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # all 64 bits
        fields = words.view(torch.int16)[: x.numel()].view(x.shape)
        mask = (fields >= dropped - 32768).to(x.dtype).mul_(65536 / (65536 - dropped))
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropoutPlacement(Regularizer):
    def __init__(self, input_rate: float, hidden_rates: list[float]) -> None:
        self.input_rate, self.hidden_rates = input_rate, hidden_rates

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        model = spec.model
        hidden = model.dropout_rates if model.dropout_type == "standard" else [0.0] * len(model.hidden_layers)
        active = model.input_dropout > 0 or any(rate > 0 for rate in hidden)
        return cls(model.input_dropout, hidden) if active else None

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        model = at_hidden_blocks(model, self.hidden_rates, Dropout)
        if self.input_rate > 0:
            model = nn.Sequential(OrderedDict([("input_dropout", Dropout(self.input_rate)), *model.named_children()]))
        return model


def hidden_rates(spec: JobSpec, dropout_type: str) -> list[float] | None:
    """The hidden layers' dropout rates when the spec asks for this type of dropout and one is above 0."""
    model = spec.model
    active = model.dropout_type == dropout_type and any(rate > 0 for rate in model.dropout_rates)
    return model.dropout_rates if active else None


def at_hidden_blocks(model: nn.Sequential, rates: list[float], layer: type[nn.Module]) -> nn.Sequential:
    """`layer(rate)` added at the end of each hidden block whose rate is above 0."""
    for i, rate in enumerate(rates):
        if rate > 0:
            model.get_submodule(f"hidden{i}").add_module("dropout", layer(rate))
    return model
