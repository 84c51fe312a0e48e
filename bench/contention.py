"""How an epoch of the README's digits job slows down when other processes keep every core busy.

Each case trains examples/digits.json (early stopping off) for EPOCHS epochs in a fresh process, so that
torch and OpenMP start with the case's settings: torch's intra-op threads (`torch.set_num_threads`), and
OMP_WAIT_POLICY unset (OpenMP's default: a thread that waits for the others at the end of a parallel
region spins) or PASSIVE (it sleeps until woken, what `steadyfit worker` sets). The seconds per epoch are
the median of epochs 2..EPOCHS (epoch 1 pays warm-up costs), quiet and beside a CPU hog: one Python busy
loop per core.
Run: `python bench/contention.py`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EPOCHS = 10
ROOT = Path(__file__).resolve().parent.parent
CASES = [  # (torch threads, OMP_WAIT_POLICY)
    (2, None),
    (2, "PASSIVE"),
    (1, None),
    (1, "PASSIVE"),
]


def child(threads: int) -> None:
    """Train the digits job with `threads` torch threads; print the seconds of each epoch as JSON."""
    import torch

    from core.spec.job import JobSpec
    from workers.training.data import load_dataset
    from workers.training.engine import EpochEnd, train

    torch.set_num_threads(threads)
    raw = json.loads((ROOT / "examples" / "digits.json").read_text())
    raw["training"]["epochs"] = EPOCHS
    raw["early_stopping"] = None
    spec = JobSpec.model_validate(raw)
    seconds: list[float] = []

    def on_epoch_end(end: EpochEnd) -> None:
        seconds.append(end.metrics["epoch_seconds"])

    train(spec, load_dataset(spec.dataset, spec.training.seed), on_epoch_end=on_epoch_end)
    print(json.dumps(seconds))


def busy_loop() -> None:
    while True:
        pass


@contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """`processes` Python busy loops, stopped on the way out."""
    hogs = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(processes)]
    for hog in hogs:
        hog.start()
    time.sleep(0.5)  # let them reach their loop
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()


def epoch_seconds(threads: int, wait_policy: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if wait_policy is not None:
        env["OMP_WAIT_POLICY"] = wait_policy
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, __file__, "--child", str(threads)]
    output = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return statistics.median(json.loads(output)[1:])


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; the digits job, {EPOCHS} epochs; median seconds per epoch of epochs 2..{EPOCHS}")
    print(f"{'torch threads':>13} {'OMP_WAIT_POLICY':>15} {'quiet':>8} {'hogged':>8} {'slowdown':>9}")
    for threads, wait_policy in CASES:
        quiet = epoch_seconds(threads, wait_policy)
        with cpu_hog(cores):
            hogged = epoch_seconds(threads, wait_policy)
        print(f"{threads:>13} {wait_policy or 'unset':>15} {quiet:>8.4f} {hogged:>8.4f} {hogged / quiet:>8.1f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]))
    else:
        main()
