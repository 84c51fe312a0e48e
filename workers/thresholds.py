"""A running job's watch on its owner's `metric.threshold` webhooks (the rule: core/webhooks/thresholds.py).

Cheap when the owner has none: the webhooks are read at the job's start and again only at an epoch's end at
least `refresh_seconds` after the last read, and an epoch is compared with the few held in memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from core.db.engine import Database
from core.webhooks import outbox, thresholds

log = logging.getLogger(__name__)


class ThresholdWatch:
    def __init__(
        self,
        database: Database,
        job_id: str,
        owner: str,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database, self.job_id, self.owner = database, job_id, owner
        self.refresh_seconds, self.clock = refresh_seconds, clock
        self.watched: list[thresholds.Watched] = []
        self.read_at = -float("inf")
        self._refresh()

    def after_epoch(self, epoch: int, metrics: Mapping[str, float | None]) -> None:
        """Record the event of each watched webhook whose threshold this epoch meets. Called after the epoch's
        row is written; a failure here is logged and leaves the event to a later epoch, never the job."""
        try:
            if self.clock() - self.read_at >= self.refresh_seconds:
                self._refresh()
            for hook in [hook for hook in self.watched if hook.threshold.met_by(metrics.get(hook.threshold.metric))]:
                self._record(hook, epoch, metrics[hook.threshold.metric])
        except Exception:
            log.exception("job %s epoch %d: metric.threshold events not recorded; tried again", self.job_id, epoch)
            self.read_at = -float("inf")  # read the webhooks again: one may have been deleted

    def _refresh(self) -> None:
        with self.database.session() as session:
            self.watched = thresholds.watched(session, self.owner, self.job_id)
        self.read_at = self.clock()

    def _record(self, hook: thresholds.Watched, epoch: int, observed: float | None) -> None:
        met = {**hook.threshold.as_json(), "epoch": epoch, "observed": observed}
        with self.database.session() as session:
            recorded = outbox.threshold_met(session, hook.webhook_id, self.job_id, met)
        self.watched.remove(hook)
        if recorded:
            log.info("job %s epoch %d: %s met webhook %s's threshold", self.job_id, epoch, met, hook.webhook_id)
