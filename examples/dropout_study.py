"""The dropout study: the README's digits job with dropout 0.0, 0.2 and 0.5, run as one grid sweep.

Needs a running steadyfit (`make serve`). Prints a Markdown table: for each dropout rate the epochs
trained, and at the best epoch (the kept weights) the validation loss (the objective), the training and
validation accuracy, the gap (training minus validation) and the test accuracy. Training accuracy is
measured as the batches are stepped, with dropout on (see the README's per-epoch metrics).
Run: `python examples/dropout_study.py [--url http://127.0.0.1:8000]`
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

# The README's digits job (its name aside: the sweep names each trial), with dropout as the parameter.
MINUS = "\N{MINUS SIGN}"  # as the README prints negative gaps
BASE: dict[str, Any] = json.loads(Path(__file__).with_name("digits.json").read_text())
del BASE["name"]
SWEEP: dict[str, Any] = {
    "name": "digits-dropout",
    "base": BASE,
    "parameters": {"model.dropout": {"values": [0.0, 0.2, 0.5]}},
    "algorithm": "grid",
    "objective": {"metric": "val_loss", "mode": "min"},
    "max_parallel": 3,
}


def call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description="Sweep dropout over 0.0, 0.2 and 0.5 on digits.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where steadyfit listens.")
    api = parser.parse_args().url.rstrip("/")

    sweep = call(f"{api}/v1/sweeps", "POST", SWEEP)
    while sweep["status"] == "running":
        time.sleep(1)
        sweep = call(f"{api}/v1/sweeps/{sweep['id']}")
    trials = call(f"{api}/v1/sweeps/{sweep['id']}/trials")["items"]

    print(f"sweep {sweep['id']}: {sweep['status']}, best dropout {sweep['best_trial']['params']['model.dropout']}")
    print(f"| dropout | epochs (best) | val_loss | train acc | val acc | train {MINUS} val | test acc |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for trial in sorted(trials, key=lambda t: t["params"]["model.dropout"]):
        best = call(f"{api}/v1/jobs/{trial['job_id']}")["best_metrics"]
        train, val, test = best["train_accuracy"], best["val_accuracy"], trial["test_metrics"]["accuracy"]
        row = (
            f"| {trial['params']['model.dropout']} | {trial['epochs_completed']} ({trial['best_epoch']}) "
            f"| {trial['objective']:.3f} | {train:.3f} | {val:.3f} | {train - val:+.3f} | {test:.3f} |"
        )
        print(row.replace("-", MINUS))


if __name__ == "__main__":
    main()
