"""Evaluation scores computed on the device, returned as one tensor so reading them costs one sync.

Classification: accuracy and macro-averaged precision, recall and F1 over the classes that occur in the
targets or the predictions (scikit-learn's convention; a class with no predicted rows has precision 0).
Regression: MAE, RMSE and R² = 1 - Σ(y-ŷ)²/Σ(y-ȳ)².
Weights: Σ|w|, √Σw², the fraction of |w| below 1e-3 and the count at or above it, over Linear/Conv weights only.
"""

from __future__ import annotations

import torch

from core.spec.job import Task

CLASSIFICATION_SCORES = ("accuracy", "precision", "recall", "f1")
REGRESSION_SCORES = ("mae", "rmse", "r2")
SPARSITY_THRESHOLD = 1e-3  # a weight with |w| below this counts as zero for `sparsity`


def score_names(task: Task) -> tuple[str, ...]:
    return CLASSIFICATION_SCORES if task == "classification" else REGRESSION_SCORES


def scores(predicted: torch.Tensor, target: torch.Tensor, task: Task, n_classes: int) -> torch.Tensor:
    """The task's scores, in `score_names(task)` order, as a float32 tensor on the inputs' device."""
    if task == "classification":
        return classification_scores(predicted, target, n_classes)
    return regression_scores(predicted, target)


def classification_scores(predicted: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    confusion = torch.bincount(target * n_classes + predicted, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).float()  # rows: true class, columns: predicted
    hits = confusion.diagonal()
    actual, claimed = confusion.sum(dim=1), confusion.sum(dim=0)
    # Weights rather than boolean indexing: indexing by a mask would wait for the device.
    present = ((actual + claimed) > 0).float()
    n_present = present.sum()
    precision = hits / claimed.clamp(min=1)
    recall = hits / actual.clamp(min=1)
    f1 = 2 * hits / (actual + claimed).clamp(min=1)  # = 2PR/(P+R), and 0 where there are no hits
    return torch.stack(
        [
            hits.sum() / target.numel(),
            (precision * present).sum() / n_present,
            (recall * present).sum() / n_present,
            (f1 * present).sum() / n_present,
        ]
    )


def regression_scores(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    predicted, target = predicted.float(), target.float()
    error = predicted - target
    squared = error.square().sum()
    spread = (target - target.mean()).square().sum()
    return torch.stack([error.abs().mean(), (squared / target.numel()).sqrt(), 1 - squared / spread])


@torch.no_grad()
def weight_stats(weights: list[torch.Tensor]) -> torch.Tensor:
    """[Σ|w|, √Σw², fraction of |w| < 1e-3, count of |w| ≥ 1e-3] as one device tensor, so reading it costs one
    sync. The count is a float32: exact up to 2^24 weights, to 7 significant digits beyond."""
    flat = torch.cat([w.detach().flatten() for w in weights]).float()
    magnitude = flat.abs()
    below = magnitude < SPARSITY_THRESHOLD
    return torch.stack([magnitude.sum(), flat.square().sum().sqrt(), below.float().mean(), (~below).sum().float()])
