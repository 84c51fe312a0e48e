"""Finds jobs the broker forgot and sends them again, so no job waits forever.

The database, not the broker, remembers every job. A job needs its message again when the worker
that ran it died (its lease expired) or when the broker lost its queue (Redis restarted without
persistence, or flushed). Sending twice is harmless: each message claims at most one job, and a claim
succeeds once. A message names its job, but the worker takes the scheduler's next one, which takes a
lost worker's job like a queued one.

Each round also fails the analyses that have been queued or running for longer than an analysis may take
(twice `ANALYSIS_SECONDS`, plus a lease): the worker that had them was lost, and they say so.

Each round also schedules every running sweep, for the trials that ended with no worker to do it
(cancelled while queued, failed after lost workers, a worker killed between a trial's end and its sweep's
next trials); schedulers take turns on a sweep, so this never creates a trial twice.
"""

from __future__ import annotations

import logging

from core.analyses import repository as analyses_repository
from core.db.engine import Database
from core.jobs import repository
from core.queue import TaskQueue
from core.settings import Settings
from core.sweeps import repository as sweeps_repository
from workers.periodic import Periodic
from workers.trials import schedule_next_trials

log = logging.getLogger(__name__)


class Reconciler(Periodic):
    def __init__(self, database: Database, queue: TaskQueue, settings: Settings) -> None:
        super().__init__("reconciler", settings.reconcile_seconds)
        self.database, self.queue, self.settings = database, queue, settings

    def round(self) -> bool:
        self.run_once()
        return False

    def run_once(self) -> list[str]:
        """Fail jobs that ran out of attempts, then resend the ones whose message is lost. Returns those ids."""
        with self.database.session() as session:
            for job_id in repository.fail_exhausted(session, self.settings.max_attempts):
                log.warning("job %s failed: its worker was lost %d times", job_id, self.settings.max_attempts)
        # A queued job whose message still waits in the broker is fine; only an empty queue means loss.
        queue_empty = self.queue.depth() == 0
        with self.database.session() as session:
            job_ids = repository.due_for_dispatch(
                session, older_than=self.settings.lease_seconds, include_queued=queue_empty
            )
        for job_id in job_ids:
            log.info("sending job %s again (its worker or its message was lost)", job_id)
            self.queue.send_train(job_id)
        with self.database.session() as session:
            stale_after = 2 * self.settings.analysis_seconds + self.settings.lease_seconds
            for job_id, kind in analyses_repository.fail_stale(session, older_than=stale_after):
                log.warning("the %s analysis of job %s failed: its worker was lost", kind, job_id)
        with self.database.session() as session:
            sweep_ids = sweeps_repository.running_ids(session)
        for sweep_id in sweep_ids:
            schedule_next_trials(self.database, self.queue, self.settings, sweep_id)
        return job_ids
