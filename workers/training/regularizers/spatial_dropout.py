"""Spatial dropout (Tompson et al., 2015): in training, whole channels of each conv block's output are zeroed
with probability p and the rest scaled by 1/(1-p), since neighbouring pixels of one channel are too correlated
for dropping single values to regularize (`dropout_type: spatial`, CNN only; p is the largest rate of
`model.dropout`). PyTorch's nn.Dropout2d, at the end of each conv block."""

from __future__ import annotations

from typing import Self

from torch import nn

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer
from workers.training.regularizers.dropout import hidden_rates


class SpatialDropout(Regularizer):
    def __init__(self, rate: float) -> None:
        self.rate = rate

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        rates = hidden_rates(spec, "spatial")
        return None if rates is None else cls(max(rates))

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        for name, block in model.named_children():
            if name.startswith("conv"):
                block.add_module("dropout", nn.Dropout2d(self.rate))
        return model
