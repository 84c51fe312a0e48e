"""Data losses, the size of the output layer they need, and predictions from the network's outputs.

Outputs are raw: logits for classification, values for regression (one column, squeezed here). Losses
are computed in float32 even when the forward pass ran under bf16 autocast.
`binary_cross_entropy` uses one logit for a two-class set and one logit per class (one-vs-rest on one-hot
targets) otherwise; label smoothing moves each binary target toward 0.5: t·(1-s) + s/2.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from core.spec.job import LossSpec, Task

Reduction = Literal["mean", "none"]


class LossFn(Protocol):
    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
        """The mean data loss over a batch (a scalar), or with `reduction="none"` each example's (a vector whose
        mean is that loss)."""
        ...


def build_loss(loss: LossSpec, n_classes: int, label_smoothing: float = 0.0) -> LossFn:
    """The data loss: loss_fn(outputs, targets) -> the batch mean; reduction="none" -> one per example."""
    if loss.name == "cross_entropy":
        return partial(_cross_entropy, label_smoothing=label_smoothing)
    if loss.name == "binary_cross_entropy":
        return partial(_binary_cross_entropy, n_classes=n_classes, label_smoothing=label_smoothing)
    if loss.name == "mse":
        return partial(_regression, loss=F.mse_loss)
    if loss.name == "mae":
        return partial(_regression, loss=F.l1_loss)
    return partial(_regression, loss=partial(F.huber_loss, delta=loss.delta))


def predict(outputs: torch.Tensor, task: Task) -> torch.Tensor:
    """Class indices (int64) for classification, values (float, shape (n,)) for regression."""
    if task == "regression":
        return outputs.squeeze(-1)
    if outputs.shape[-1] == 1:
        return (outputs.squeeze(-1) > 0).long()
    return outputs.argmax(dim=-1)


def _cross_entropy(
    outputs: torch.Tensor, targets: torch.Tensor, reduction: Reduction = "mean", *, label_smoothing: float
) -> torch.Tensor:
    return F.cross_entropy(outputs.float(), targets, label_smoothing=label_smoothing, reduction=reduction)


def _binary_cross_entropy(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    reduction: Reduction = "mean",
    *,
    n_classes: int,
    label_smoothing: float,
) -> torch.Tensor:
    one_logit = outputs.shape[-1] == 1
    binary = targets.float().unsqueeze(-1) if one_logit else F.one_hot(targets, n_classes).float()
    if label_smoothing > 0:
        binary = binary * (1 - label_smoothing) + label_smoothing / 2
    if reduction == "none":  # an example's loss is the mean over its logits, as the batch loss is over all
        return F.binary_cross_entropy_with_logits(outputs.float(), binary, reduction="none").mean(dim=-1)
    return F.binary_cross_entropy_with_logits(outputs.float(), binary)


def _regression(
    outputs: torch.Tensor, targets: torch.Tensor, reduction: Reduction = "mean", *, loss: Callable[..., torch.Tensor]
) -> torch.Tensor:
    return loss(outputs.squeeze(-1).float(), targets.float(), reduction=reduction)
