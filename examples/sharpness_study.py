"""Flat and sharp minima on digits: the loss landscape (top Hessian eigenvalue, ε-sharpness) of the README's
network trained with large batches and no regularization, against small batches with L2; then, across a grid
of batch sizes and L2 strengths, how sharpness goes with the gap between training and test accuracy.
Needs a running steadyfit. Run: `python examples/sharpness_study.py [--url http://127.0.0.1:8000]`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steadyfit.client import Client

BASE: dict[str, Any] = json.loads(Path(__file__).with_name("digits.json").read_text())
BASE["model"] = {**BASE["model"], "dropout": 0.0, "batch_norm": False}
BASE["analysis"] = {"landscape": True}
GRID = [(batch, l2) for batch in (16, 64, 512) for l2 in (0.0, 1e-3)]


def variant(batch: int, l2: float) -> dict[str, Any]:
    training = {**BASE["training"], "batch_size": batch}
    return {**BASE, "name": f"digits-batch-{batch}-l2-{l2:g}", "regularization": {"l2": l2}, "training": training}


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(values: list[float]) -> list[int]:
        order = sorted(range(len(values)), key=values.__getitem__)
        return [order.index(i) for i in range(len(values))]

    rx, ry, n = ranks(xs), ranks(ys), len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True)) / (n * (n * n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description="Sharpness of large- and small-batch minima on digits.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where steadyfit listens.")
    with Client(url=parser.parse_args().url) as api:
        submitted = [api.submit(variant(batch, l2)) for batch, l2 in GRID]
        print("| batch | L2 | top eigenvalue | trace | ε-sharpness | train acc | test acc | gap |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        sharpness, gaps = [], []
        for (batch, l2), job in zip(GRID, submitted, strict=True):
            job = api.wait(job.id)
            found = api.analysis(job.id, "landscape", wait=900).result or {}
            train = (job.best_metrics or {})["train_accuracy"]
            test = (job.test_metrics or {})["accuracy"]
            sharpness.append(found["sharpness"])
            gaps.append(train - test)
            print(
                f"| {batch} | {l2:g} | {found['top_eigenvalue']:.3g} | {found['hessian_trace']:.3g} "
                f"| {found['sharpness']:.3g} | {train:.3f} | {test:.3f} | {train - test:+.3f} |"
            )
        print(f"\nSpearman rank correlation of ε-sharpness and the train - test gap: {spearman(sharpness, gaps):+.2f}")


if __name__ == "__main__":
    main()
