"""The pruning report: how far a finished job's kept weights can be pruned without retraining.

1. The prunable weights are those of the Linear and Conv layers (not biases, not batch norm), all layers
   together (global magnitude pruning).
2. At each sparsity s of `LEVELS`, the k = round(s · N) weights of smallest |w| are set to 0; weights of equal
   magnitude are taken in the order they are stored (a stable sort), so exactly k go.
3. Each pruned network is evaluated on the validation and test splits, and its parameters counted: the
   non-zero prunable weights (`weights`), and those plus every bias and batch-norm parameter (`parameters`).
4. The chosen sparsity is the highest whose validation accuracy is within `POINT` (one point) of the unpruned
   network's; for regression, whose validation loss is within 1 % of it. Its weights are stored as
   `weights-pruned.safetensors`.
"""

from __future__ import annotations

from typing import Any

import torch

from workers.analyses.context import Context
from workers.training.checkpoint import weights_to_bytes
from workers.training.model import layer_weights

LEVELS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
POINT = 0.01
PRUNED_WEIGHTS = "weights-pruned.safetensors"


def magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Boolean masks (True: kept) that zero the round(sparsity · N) smallest |w| over all of `weights`."""
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    keep = torch.ones_like(flat, dtype=torch.bool)
    pruned = round(sparsity * flat.numel())
    if pruned:
        keep[torch.argsort(flat, stable=True)[:pruned]] = False
    return [mask.reshape(w.shape) for mask, w in zip(keep.split([w.numel() for w in weights]), weights, strict=True)]


def chosen(levels: list[dict[str, Any]], classification: bool) -> dict[str, Any]:
    """Rule 4: the highest sparsity as good as the unpruned network, within a point of accuracy (or 1 % loss)."""
    unpruned = levels[0]["validation"]
    if classification:
        good = [level for level in levels if level["validation"]["accuracy"] >= unpruned["accuracy"] - POINT]
    else:
        good = [level for level in levels if level["validation"]["loss"] <= unpruned["loss"] * 1.01]
    return max(good, key=lambda level: level["sparsity"])


def run(context: Context) -> dict[str, Any]:
    model = context.model()
    weights = layer_weights(model)
    original = [w.detach().clone() for w in weights]
    everything = sum(p.numel() for p in model.parameters())
    splits = {name: context.split(name) for name in ("val", "test")}
    levels = []
    for sparsity in LEVELS:
        context.check_time()
        with torch.no_grad():
            for weight, before, mask in zip(weights, original, magnitude_masks(original, sparsity), strict=True):
                weight.copy_(before * mask)
        kept = sum(int(torch.count_nonzero(w)) for w in weights)
        levels.append(
            {
                "sparsity": sparsity,
                "weights": kept,
                "parameters": everything - sum(w.numel() for w in weights) + kept,
                "validation": context.evaluate(model, *splits["val"]),
                "test": context.evaluate(model, *splits["test"]),
            }
        )
    choice = chosen(levels, context.data.task == "classification")
    with torch.no_grad():
        for weight, before, mask in zip(weights, original, magnitude_masks(original, choice["sparsity"]), strict=True):
            weight.copy_(before * mask)
    context.store(PRUNED_WEIGHTS, weights_to_bytes(model.state_dict(), {"sparsity": choice["sparsity"]}))
    return {
        "levels": levels,
        "chosen_sparsity": choice["sparsity"],
        "weights_total": sum(w.numel() for w in weights),
        "parameters_total": everything,
        "artifact": PRUNED_WEIGHTS,
    }
