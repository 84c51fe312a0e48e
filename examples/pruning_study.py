"""Parameters with and without regularization: the README's digits network trained with no penalty, with L1
and with L2, then pruned by global magnitude (each job's pruning report). Needs a running steadyfit.

Prints a Markdown table: for each regularization the test accuracy of the kept weights, the sparsity the
report chose (the highest within one point of the unpruned validation accuracy), the weights left there of
all the network's Linear weights, and the test accuracy with only those.
Run: `python examples/pruning_study.py [--url http://127.0.0.1:8000]`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steadyfit.client import Client

BASE: dict[str, Any] = json.loads(Path(__file__).with_name("digits.json").read_text())
BASE["model"] = {**BASE["model"], "dropout": 0.0, "batch_norm": False}  # the penalties alone
VARIANTS = {"none": {}, "L1 1e-4": {"l1": 1e-4}, "L2 1e-3": {"l2": 1e-3}}


def main() -> None:
    parser = argparse.ArgumentParser(description="Prune the digits network trained with no penalty, L1 and L2.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where steadyfit listens.")
    with Client(url=parser.parse_args().url) as api:
        jobs = {
            label: api.submit({**BASE, "name": f"digits-{label}", "regularization": penalty})
            for label, penalty in VARIANTS.items()
        }
        print("| regularization | test acc | chosen sparsity | weights left | test acc pruned |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, job in jobs.items():
            job = api.wait(job.id)
            report = api.analysis(job.id, "pruning", wait=600).result or {}
            level = next(lv for lv in report["levels"] if lv["sparsity"] == report["chosen_sparsity"])
            print(
                f"| {label} | {job.test_metrics['accuracy']:.3f} | {report['chosen_sparsity']:.0%} "
                f"| {level['weights']:,} of {report['weights_total']:,} | {level['test']['accuracy']:.3f} |"
            )


if __name__ == "__main__":
    main()
