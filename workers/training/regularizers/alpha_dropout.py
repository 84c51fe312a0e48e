"""Alpha dropout (Klambauer et al., 2017, "Self-Normalizing Neural Networks"): at the end of each hidden block,
dropped values are set to SELU's negative saturation and the result is scaled and shifted back, so activations
keep mean 0 and variance 1 (`dropout_type: alpha`, for `activation: selu`). PyTorch's nn.AlphaDropout."""

from __future__ import annotations

from typing import Self

from torch import nn

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer
from workers.training.regularizers.dropout import at_hidden_blocks, hidden_rates


class AlphaDropout(Regularizer):
    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        rates = hidden_rates(spec, "alpha")
        return None if rates is None else cls(rates)

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        return at_hidden_blocks(model, self.rates, nn.AlphaDropout)
