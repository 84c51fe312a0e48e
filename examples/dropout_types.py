"""Dropout types compared on shapes: the CNN of examples/shapes_cnn.json with dropout 0.3 of each type (alpha
with SELU, which it is made for; the others with ReLU). Needs a running steadyfit. Prints a Markdown table of
each job's best epoch, validation loss there, train - validation accuracy gap and test accuracy.
Run: `python examples/dropout_types.py [--url http://127.0.0.1:8000]`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steadyfit.client import Client

BASE: dict[str, Any] = json.loads(Path(__file__).with_name("shapes_cnn.json").read_text())
TYPES = ["none", "standard", "alpha", "gaussian", "spatial", "dropconnect"]


def variant(dropout_type: str) -> dict[str, Any]:
    model = {**BASE["model"], "dropout": 0.0 if dropout_type == "none" else 0.3}
    if dropout_type != "none":
        model["dropout_type"] = dropout_type
    if dropout_type == "alpha":
        model["activation"] = "selu"
    return {**BASE, "name": f"shapes-dropout-{dropout_type}", "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(description="Compare the dropout types on shapes.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where steadyfit listens.")
    with Client(url=parser.parse_args().url) as api:
        jobs = [api.submit(variant(dropout_type)) for dropout_type in TYPES]
        print("| dropout | best epoch | val_loss | train - val acc | test acc |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for dropout_type, job in zip(TYPES, jobs, strict=True):
            job = api.wait(job.id)
            best, test = job.best_metrics or {}, job.test_metrics or {}
            gap = best["train_accuracy"] - best["val_accuracy"]
            print(
                f"| {dropout_type} | {job.best_epoch} | {best['val_loss']:.3f} | {gap:+.3f} | {test['accuracy']:.3f} |"
            )


if __name__ == "__main__":
    main()
