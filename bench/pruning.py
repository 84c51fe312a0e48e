"""What pruning saves: the same random search with and without the Hyperband pruner.

A random search over digits (MLP 64 → 128 → 64 → 10 with batch norm; lr log-uniform in [1e-4, 1e-1], L2
log-uniform in [1e-6, 1e-2], dropout one of 0.0/0.2/0.5), 24 trials of up to 27 epochs, objective
val_loss at each trial's best epoch. Random sampling of trial n depends only on the seed and n, so both
searches try the very same 24 configurations; only the pruner differs (Hyperband: first rung at 1
epoch, reduction factor 3).

Everything runs through the service's own code on a throwaway SQLite database: the sweep is created by
`service.sweeps.service.create` and each trial is run by `workers.runner.JobRunner` (claim → train, the
pruner asked after every epoch → record → schedule the next trial), one trial at a time, as one worker
would. Prints the epochs trained, the wall time and the best objective of each search.
Run: `python bench/pruning.py` (about half a minute on an idle 2-core CPU).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from core.settings import Settings
from workers.environment import prepare_torch

prepare_torch(Settings())  # the kernels a worker trains with; torch reads them when it loads, just below

from core.db.migrate import upgrade  # noqa: E402
from core.spec.sweep import SweepCreate  # noqa: E402
from core.sweeps import repository  # noqa: E402
from core.tenants.principal import KEYLESS  # noqa: E402
from service.sweeps import service as sweeps  # noqa: E402
from workers.runner import JobRunner  # noqa: E402

BASE: dict[str, Any] = {
    "dataset": {"name": "digits", "validation_split": 0.2, "test_split": 0.2},
    "model": {"hidden_layers": [128, 64], "batch_norm": True, "init": "he_normal"},
    "optimizer": {"name": "adam", "lr": 0.001},
    "training": {"epochs": 27, "batch_size": 64, "seed": 42},
}
PARAMETERS: dict[str, Any] = {
    "optimizer.lr": {"log_uniform": [1e-4, 1e-1]},
    "regularization.l2": {"log_uniform": [1e-6, 1e-2]},
    "model.dropout": {"values": [0.0, 0.2, 0.5]},
}


def search(runner: JobRunner, pruner: str, trials: int, seed: int) -> dict[str, Any]:
    body = SweepCreate.model_validate(
        {
            "name": f"bench-{pruner}",
            "base": BASE,
            "parameters": PARAMETERS,
            "algorithm": "random",
            "objective": {"metric": "val_loss", "mode": "min"},
            "max_trials": trials,
            "max_parallel": 1,
            "pruner": {"name": pruner, "min_epochs": 1, "reduction_factor": 3},
            "seed": seed,
        }
    )
    started = time.perf_counter()
    with runner.database.session() as session:
        sweep_id = sweeps.create(session, runner.queue, body, runner.settings, KEYLESS).id
    while queued := _queued(runner, sweep_id):
        for job_id in queued:
            runner.run(job_id)  # ends by scheduling the next trial, as a worker does
    seconds = time.perf_counter() - started
    with runner.database.session() as session:
        read = sweeps.read(session, sweep_id, KEYLESS)
        jobs = repository.trials(session, sweep_id)
        epochs = sum(job.epochs_completed for job in jobs)
    assert read.status == "succeeded" and read.best_trial is not None, read
    return {
        "epochs": epochs,
        "seconds": seconds,
        "best": read.best_trial.objective,
        "pruned": read.trials.pruned,
    }


def _queued(runner: JobRunner, sweep_id: str) -> list[str]:
    with runner.database.session() as session:
        return [job.id for job in repository.trials(session, sweep_id) if job.status == "queued"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="steadyfit-bench-") as folder:
        settings = Settings(data_dir=Path(folder))
        upgrade(settings.resolved_database_url)
        runner = JobRunner.from_settings(worker_id="bench", settings=settings)
        results = {pruner: search(runner, pruner, args.trials, args.seed) for pruner in ("none", "hyperband")}
        runner.database.dispose()
        runner.queue.close()

    print(f"random search on digits: {args.trials} trials of up to 27 epochs, seed {args.seed}, objective val_loss")
    print(f"{'pruner':<10} {'epochs':>7} {'wall s':>8} {'best val_loss':>14} {'pruned':>7}")
    for pruner, r in results.items():
        print(f"{pruner:<10} {r['epochs']:>7} {r['seconds']:>8.1f} {r['best']:>14.4f} {r['pruned']:>7}")
    full, pruned = results["none"], results["hyperband"]
    print(
        f"hyperband: {1 - pruned['epochs'] / full['epochs']:.0%} fewer epochs, "
        f"{1 - pruned['seconds'] / full['seconds']:.0%} less wall time, "
        f"best objective {pruned['best'] / full['best'] - 1:+.1%} against the unpruned search"
    )


if __name__ == "__main__":
    main()
