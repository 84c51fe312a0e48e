"""Keeps a claimed job's lease alive and notices cancel requests, from a background thread."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from core.db.engine import Database
from core.jobs import repository
from core.states import StopReason
from workers import shutdown

log = logging.getLogger(__name__)

# Why training stops besides the stored stop reasons: neither is stored, and the job is not finished by this worker.
LEASE_LOST = "lease_lost"  # another worker holds the job now: write nothing more
SHUTDOWN = "shutdown"  # this worker is stopping: hand the job back


class Heartbeat:
    """Renews the lease every `interval` seconds; `stop_reason()` says whether training must stop.

    Training polls `stop_reason()` after every batch, so a cancel takes effect within one interval
    plus one batch. If the lease is lost (another worker took the job over), training stops at once
    and this worker writes nothing more.
    """

    def __init__(
        self, database: Database, job_id: str, worker_id: str, *, lease_seconds: float, interval: float
    ) -> None:
        self.database, self.job_id, self.worker_id = database, job_id, worker_id
        self.lease_seconds, self.interval = lease_seconds, interval
        self.cancelled = threading.Event()
        self.lease_lost = threading.Event()
        self._done = threading.Event()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def stop_after(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def stop_reason(self) -> str | None:
        if self.lease_lost.is_set():
            return LEASE_LOST
        if shutdown.requested.is_set():
            return SHUTDOWN
        if self.cancelled.is_set():
            return StopReason.CANCELLED
        if self._deadline is not None and time.monotonic() > self._deadline:
            return StopReason.TIMEOUT
        return None

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                with self.database.session() as session:
                    cancel = repository.renew_lease(session, self.job_id, self.worker_id, self.lease_seconds)
            except Exception as exc:  # a database blip: keep training, try again next beat
                log.warning("heartbeat of job %s failed: %s", self.job_id, exc)
                continue
            if cancel is None:
                log.warning("job %s: lease lost, stopping", self.job_id)
                self.lease_lost.set()
                return
            if cancel:
                self.cancelled.set()
