"""The Celery side both processes share: broker configuration, and the API's producer.

The API never imports the worker code: it sends tasks by name. A train message carries the id of the job
it was sent for, but only tells a worker there is work: the worker claims the scheduler's next job
(core/jobs/scheduler.py). An analysis or prediction message names the row to work on.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from core.settings import Settings

TRAIN_TASK = "steadyfit.train"
ANALYZE_TASK = "steadyfit.analyze"
PREDICT_TASK = "steadyfit.predict"

log = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    transport_options: dict[str, Any]
    if settings.broker_is_filesystem:
        folder = settings.queue_dir
        folder.mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
            "polling_interval": 0.1,
        }
    else:
        # Longer than a lease: a message redelivered while its job runs claims at most the next waiting job.
        transport_options = {"visibility_timeout": max(300.0, 4 * settings.lease_seconds)}
    return {
        "broker_url": settings.resolved_broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_timeout": settings.broker_timeout_seconds,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue_name,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
    }


class TaskQueue:
    """Sends job ids to the workers."""

    def __init__(self, settings: Settings) -> None:
        self.celery = Celery("steadyfit-api", set_as_current=False)
        self.celery.conf.update(celery_config(settings))
        self.timeout = settings.broker_timeout_seconds
        self.queue_name = settings.queue_name
        self.folder = settings.queue_dir if settings.broker_is_filesystem else None

    def send_train(self, job_id: str) -> None:
        """Queue a training run. A failed send is logged, not raised: the job row is already committed."""
        try:
            self.celery.send_task(TRAIN_TASK, args=[job_id])
        except Exception:
            log.exception("could not queue job %s; it stays queued in the database", job_id)

    def send_analysis(self, job_id: str, kind: str) -> None:
        """Queue an analysis of a job; as for training, a failed send is logged and its row stays queued."""
        try:
            self.celery.send_task(ANALYZE_TASK, args=[job_id, kind])
        except Exception:
            log.exception("could not queue the %s analysis of job %s", kind, job_id)

    def send_prediction(self, prediction_id: str) -> None:
        """Queue a batch prediction; a failed send is logged and its row stays queued."""
        try:
            self.celery.send_task(PREDICT_TASK, args=[prediction_id])
        except Exception:
            log.exception("could not queue prediction %s", prediction_id)

    def ping(self) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=self.timeout)
            if connection.transport_cls != "filesystem":
                connection.default_channel.client.ping()

    def depth(self) -> int:
        """Messages waiting in the queue (not those a worker has taken)."""
        if self.folder is not None:
            return sum(1 for _ in self.folder.glob(f"*.{self.queue_name}.msg"))
        with self.celery.connection_for_write() as connection:
            return int(connection.default_channel.client.llen(self.queue_name))

    def close(self) -> None:
        self.celery.close()
