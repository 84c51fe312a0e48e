"""A worker training several jobs at once gives each a share of the cores, not all of them."""

from __future__ import annotations

from workers.app import threads_per_job


def test_the_cores_are_shared_out_among_the_jobs_trained_at_once() -> None:
    assert threads_per_job(cores=2, concurrency=1) == 2
    assert threads_per_job(cores=8, concurrency=2) == 4
    assert threads_per_job(cores=8, concurrency=3) == 2  # 2 cores left idle rather than 3 jobs on 3 threads
    assert threads_per_job(cores=2, concurrency=4) == 1  # never fewer than one
