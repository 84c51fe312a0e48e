"""The Celery application of `steadyfit worker`. Tasks stay thin: claim → run → record (workers/runner.py)."""

from __future__ import annotations

import logging

from celery import Celery

from core.queue import celery_config
from core.settings import Settings


def threads_per_job(cores: int, concurrency: int) -> int:
    """Torch's CPU threads for each of `concurrency` jobs trained at once: the cores shared out among them,
    since each starting a thread per core would oversubscribe the CPU `concurrency` times over."""
    return max(1, cores // concurrency)


def create_celery(settings: Settings) -> Celery:
    app = Celery("steadyfit")
    app.conf.update(celery_config(settings))
    app.conf.worker_concurrency = settings.worker_concurrency
    app.conf.include = ["workers.tasks"]
    return app


logging.basicConfig(level=Settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_celery(Settings())
