"""A worker's torch threads: a share of the cores for each job trained at once, and OpenMP threads that sleep
rather than spin while they wait, so that other processes on the cores do not slow training a hundredfold."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from tests.fixtures import Process, settings_env, wait_for
from workers.app import threads_per_job


def test_the_cores_are_shared_out_among_the_jobs_trained_at_once() -> None:
    assert threads_per_job(cores=2, concurrency=1) == 2
    assert threads_per_job(cores=8, concurrency=2) == 4
    assert threads_per_job(cores=8, concurrency=3) == 2  # 2 cores left idle rather than 3 jobs on 3 threads
    assert threads_per_job(cores=2, concurrency=4) == 1  # never fewer than one


def test_the_workers_openmp_threads_wait_without_spinning(settings: Settings, tmp_path: Path) -> None:
    # OMP_DISPLAY_ENV makes OpenMP print its settings as torch loads it; a spin count of 0 is a passive wait.
    env = {**settings_env(settings), "OMP_DISPLAY_ENV": "VERBOSE"}
    worker = Process(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    try:
        wait_for(lambda: " ready." in worker.log(), 120, "the worker to be ready")
    finally:
        worker.end()
    assert "GOMP_SPINCOUNT = '0'" in worker.log()
