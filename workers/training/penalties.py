"""Weight penalties, the max-norm constraint and weight statistics.

All of them look at the weights of Linear/Conv layers only: biases and batch-norm parameters are never
penalized, constrained or counted.
"""

from __future__ import annotations

import torch
from torch import nn

from workers.training.model import trainable_layers

SPARSITY_THRESHOLD = 1e-3  # a weight with |w| below this counts as zero for `sparsity`


def layer_weights(model: nn.Module, *, trainable_only: bool = False) -> list[torch.Tensor]:
    """The weight tensors of the Linear/Conv layers, optionally without frozen ones."""
    weights = [layer.weight for layer in trainable_layers(model)]
    return [w for w in weights if w.requires_grad] if trainable_only else weights


def penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor:
    """l1·Σ|w| + l2·Σw²: its gradient is l1·sign(w) + 2·l2·w (elastic net when both are set)."""
    terms = []
    if l1 > 0:
        terms.append(l1 * torch.stack([w.abs().sum() for w in weights]).sum())
    if l2 > 0:
        terms.append(l2 * torch.stack([w.square().sum() for w in weights]).sum())
    if not terms:
        return weights[0].new_zeros(())
    return torch.stack(terms).sum()


@torch.no_grad()
def apply_max_norm(weights: list[torch.Tensor], max_norm: float) -> None:
    """Rescale each unit's incoming weight vector (a Linear row, a Conv filter) whose L2 norm exceeds max_norm."""
    for weight in weights:
        weight.renorm_(p=2, dim=0, maxnorm=max_norm)


@torch.no_grad()
def weight_stats(weights: list[torch.Tensor]) -> torch.Tensor:
    """[Σ|w|, √Σw², fraction of |w| < 1e-3] as one device tensor, so reading it costs one sync."""
    flat = torch.cat([w.detach().flatten() for w in weights]).float()
    magnitude = flat.abs()
    return torch.stack([magnitude.sum(), flat.square().sum().sqrt(), (magnitude < SPARSITY_THRESHOLD).float().mean()])
