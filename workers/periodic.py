"""A worker's background rounds (the reconciler's, the webhook deliveries'), in a daemon thread of the worker's
main process, which forks its pool children while the thread runs."""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class Periodic(ABC):
    """Calls `round()` every `interval` seconds, and again at once while it returns True (more is due).

    A fork in the middle of a round would copy locks held by it (a module import, a connection pool, the
    resolver's) into the child, where nothing would ever release them; forks wait for the round to end
    instead, so a round should be short.
    """

    def __init__(self, name: str, interval: float) -> None:
        self.name, self.interval = name, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._round = threading.Lock()
        self._paused = False

    @abstractmethod
    def round(self) -> bool:
        """One round of work; True when more is due at once."""

    def start(self) -> None:
        os.register_at_fork(before=self._pause, after_in_parent=self._resume, after_in_child=self._resume)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        busy = False
        while not self._stop.wait(0 if busy else self.interval):
            with self._round:
                try:
                    busy = self.round()
                except Exception as exc:  # broker or database briefly away: try again next round
                    log.warning("%s round failed: %s", self.name, exc)
                    busy = False

    def _pause(self) -> None:
        # Bounded: a round stuck on an unreachable database must not stop the pool from replacing children.
        self._paused = self._round.acquire(timeout=30)

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._round.release()
