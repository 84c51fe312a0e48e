"""The confusion matrix of a classification job's kept weights on its test split, with each class's precision,
recall, F1 and support. Rows are the true class, columns the predicted one; a class never predicted has
precision 0, one never present recall 0 (scikit-learn's convention)."""

from __future__ import annotations

from typing import Any

import torch

from workers.analyses.context import Context
from workers.training.losses import predict


def per_class(matrix: list[list[int]]) -> list[dict[str, float | int]]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows: true, columns: predicted)."""
    out: list[dict[str, float | int]] = []
    for k, row in enumerate(matrix):
        hits, support, claimed = row[k], sum(row), sum(r[k] for r in matrix)
        precision = hits / claimed if claimed else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * hits / (support + claimed) if support + claimed else 0.0
        out.append({"precision": precision, "recall": recall, "f1": f1, "support": support})
    return out


def run(context: Context) -> dict[str, Any]:
    if context.data.task != "classification":
        raise ValueError("a confusion matrix needs a classification job")
    x, y = context.split("test")
    with torch.no_grad():
        predicted = predict(context.model()(x), "classification")
    n = context.data.n_classes
    matrix = torch.bincount(y * n + predicted, minlength=n * n).reshape(n, n).tolist()
    names = context.data.class_names or [str(k) for k in range(n)]
    return {
        "classes": names,
        "matrix": matrix,
        "per_class": [{"class": name, **scores} for name, scores in zip(names, per_class(matrix), strict=True)],
        "accuracy": sum(matrix[k][k] for k in range(n)) / max(len(y), 1),
    }
