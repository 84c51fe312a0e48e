"""Fine-tuning against training from scratch on a small data set: the CNN of examples/shapes_cnn.json trains on
3,000 `shapes` images and is saved as a model; then, on 150 other images (another seed, more noise), one job
starts from that model and one from scratch, with the same spec and seed. Needs a running steadyfit. Prints a
Markdown table of each job's best epoch, validation loss there and test accuracy.
Run: `python examples/fine_tuning.py [--url http://127.0.0.1:8000]`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from steadyfit.client import Client

SOURCE: dict[str, Any] = json.loads(Path(__file__).with_name("shapes_cnn.json").read_text())
SMALL = {"name": "shapes", "n_samples": 150, "noise": 0.2, "seed": 7}


def small_job(name: str, **changes: Any) -> dict[str, Any]:
    return {**SOURCE, "name": name, "dataset": SMALL, "training": {**SOURCE["training"], "epochs": 30}, **changes}


def main() -> None:
    parser = argparse.ArgumentParser(description="Fine-tune a saved model against training from scratch.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where steadyfit listens.")
    with Client(url=parser.parse_args().url) as api:
        source = api.wait(api.submit(SOURCE).id)
        model = api.save_model(source.id, "shapes-cnn-3000")
        runs = {
            "from scratch": api.submit(small_job("shapes-150-scratch")),
            "fine-tuned from the model": api.submit(small_job("shapes-150-tuned", init_from={"model_id": model.id})),
        }
        print(f"source: {source.test_metrics and source.test_metrics['accuracy']:.3f} test accuracy on 3,000 images")
        print("| 150 images | best epoch | val_loss | test acc |")
        print("| --- | ---: | ---: | ---: |")
        for label, submitted in runs.items():
            job = api.wait(submitted.id)
            best, test = job.best_metrics or {}, job.test_metrics or {}
            print(f"| {label} | {job.best_epoch} | {best['val_loss']:.3f} | {test['accuracy']:.3f} |")


if __name__ == "__main__":
    main()
