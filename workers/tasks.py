"""Celery tasks. They take ids and hand over to the runner, which owns the job's state machine."""

from __future__ import annotations

import os
import socket

from celery.signals import worker_shutting_down

from core.queue import ANALYZE_TASK, PREDICT_TASK, TRAIN_TASK
from core.states import AnalysisKind
from workers import predictions, shutdown
from workers.app import app
from workers.runner import JobRunner

worker_shutting_down.connect(shutdown.forward_to_children, weak=False)

_runner: JobRunner | None = None
_runner_pid: int | None = None


def runner() -> JobRunner:
    """This process's runner, built on first use after a fork (never shared across processes)."""
    global _runner, _runner_pid
    if _runner is None or _runner_pid != os.getpid():
        _runner = JobRunner.from_settings(worker_id=f"{socket.gethostname()}:{os.getpid()}")
        _runner_pid = os.getpid()
    return _runner


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> None:
    # Installed here, not at process start: billiard resets SIGTERM after Celery's process initializer.
    shutdown.install_child_handler()
    runner().run(job_id)


@app.task(name=ANALYZE_TASK)
def analyze(job_id: str, kind: str) -> None:
    runner().analyze(job_id, AnalysisKind(kind))


@app.task(name=PREDICT_TASK)
def predict(prediction_id: str) -> None:
    predictions.run(runner().database, runner().artifacts, prediction_id)
