"""Graceful shutdown: on SIGTERM a worker hands its job back instead of losing or finishing it.

Celery's warm shutdown (SIGTERM to the main process) waits for running tasks, which for a training
job could be hours. So the main process forwards the signal to its pool children, and a child that
gets it stops training at the end of the current batch and returns the job to the queue; the job's
last checkpoint lets the next worker resume it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

import billiard

log = logging.getLogger(__name__)

requested = threading.Event()


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    requested.set()


def install_child_handler() -> None:
    """In a pool child, as a job starts: SIGTERM asks the job to stop rather than killing the process."""
    requested.clear()
    signal.signal(signal.SIGTERM, _on_sigterm)


def forward_to_children(**_kwargs: Any) -> None:
    """In the main process, as warm shutdown begins: pass SIGTERM on to the children training jobs."""
    for child in billiard.active_children():
        if child.pid is not None:
            log.info("asking pool process %d to hand its job back", child.pid)
            with contextlib.suppress(ProcessLookupError):  # it may have just finished
                os.kill(child.pid, signal.SIGTERM)
