"""Prometheus metrics a worker records as it trains, served by `steadyfit worker --metrics-port`.

Jobs train in forked children, so the counters live in prometheus-client's multiprocess files, which
the worker's main process adds up when scraped.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EPOCH_SECONDS = Histogram(
    "steadyfit_epoch_duration_seconds",
    "Wall time of one training epoch, validation included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
EPOCHS = Counter("steadyfit_worker_epochs", "Epochs this worker has trained and recorded.")
JOBS_ENDED = Counter("steadyfit_worker_jobs_ended", "Jobs this worker has finished, by status.", ["status"])
