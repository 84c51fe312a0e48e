"""Predictions as a table, one row per input row: `row`, `name` (images sent as files), then `predicted` and
`p_<class>` for each class, or `value`. The CSV of a batch prediction and of `steadyfit predict`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def header(classes: Sequence[str] | None, named: bool) -> list[str]:
    start = ["row", *(["name"] if named else [])]
    return [*start, "predicted", *(f"p_{label}" for label in classes)] if classes else [*start, "value"]


def rows(
    first: int, answers: np.ndarray, classes: Sequence[str] | None, names: Sequence[str] | None
) -> Iterator[list[object]]:
    """The table's rows for `answers` (probabilities (n, classes), or values (n,)), numbered from `first`."""
    for i, answer in enumerate(answers):
        start: list[object] = [first + i, *([names[i]] if names else [])]
        if classes:
            yield [*start, classes[int(np.argmax(answer))], *(f"{p:.6g}" for p in answer)]
        else:
            yield [*start, f"{float(answer):.6g}"]
