"""A worker's part in sweeps: each epoch of a trial goes to the sweep's pruner, and when a trial ends the
sweep's next trials are created (core/sweeps/schedule.py decides both, from the database alone)."""

from __future__ import annotations

import logging

from core.db.engine import Database
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.sweep import SweepCreate
from core.states import StopReason
from core.sweeps import repository as sweeps_repository
from core.sweeps import schedule as sweeps_schedule
from workers.retry import with_retries
from workers.training.engine import StopTraining

log = logging.getLogger(__name__)


class TrialPruning:
    """Asks the sweep's pruner about a trial after each of its epochs but the last (stopping then would
    save nothing, and the trial has trained to its end); raises StopTraining("pruned") when the trial is to
    stop. Call it after the epoch's row is written: the decision reads it from there."""

    def __init__(
        self, database: Database, job_id: str, worker_id: str, sweep_id: str, *, epochs: int, give_up_after: float
    ) -> None:
        self.database, self.job_id, self.worker_id, self.sweep_id = database, job_id, worker_id, sweep_id
        self.epochs, self.give_up_after = epochs, give_up_after

    @classmethod
    def of_trial(
        cls, database: Database, job_id: str, worker_id: str, sweep_id: str, *, epochs: int, give_up_after: float
    ) -> TrialPruning | None:
        """The pruning of this trial (`epochs` long), or None when its sweep prunes nothing."""
        with database.session() as session:
            sweep = sweeps_repository.get(session, sweep_id)
            if sweep is None or SweepCreate.model_validate(sweep.spec).pruner.name == "none":
                return None
        return cls(database, job_id, worker_id, sweep_id, epochs=epochs, give_up_after=give_up_after)

    def after_epoch(self, epoch: int) -> None:
        if epoch >= self.epochs:
            return

        def decide() -> bool:
            with self.database.session() as session:
                return sweeps_schedule.prune(session, self.sweep_id, self.job_id, self.worker_id)

        if with_retries(decide, what=f"job {self.job_id} pruning", give_up_after=self.give_up_after):
            log.info("job %s pruned after epoch %d", self.job_id, epoch)
            raise StopTraining(StopReason.PRUNED)


def schedule_next_trials(database: Database, queue: TaskQueue, settings: Settings, sweep_id: str) -> None:
    """Create the sweep's next trials (or finish it). A failure is logged, not raised: the reconciler's
    next round does the same."""
    try:
        with database.session() as session:
            created = sweeps_schedule.schedule(session, queue, settings, sweep_id)
    except Exception:
        log.exception("sweep %s: could not schedule its next trials; the reconciler will", sweep_id)
        return
    for trial in created:
        log.info("sweep %s: trial %s queued as job %s", sweep_id, trial.trial_number, trial.id)
