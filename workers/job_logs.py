"""A job's log lines as its worker writes them (GET /v1/jobs/{id}/logs).

While a runner has a job, a handler on the root logger keeps, at INFO and above, the lines of steadyfit's
own loggers and of Python warnings (torch's among them), each with its traceback where it has one. They are
written to the job's log when an epoch ends and when the job ends (one process trains one job at a time, so
every such line is the job's). At most JOB_LOG_LINES are kept, then one line says how many were left out; a
line is cut at 8 KiB. A failure to write them is never the job's failure.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from core.db.engine import Database
from core.jobs import logs

KEPT = ("workers", "core", "py.warnings", "torch")
MAX_LINE = 8192

Line = tuple[datetime, str, str, str]  # time, level, logger, message


class JobLogs(logging.Handler):
    def __init__(self, database: Database, job_id: str, limit: int) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.database, self.job_id, self.limit = database, job_id, limit
        self.pending: list[Line] = []
        self.kept = self.left_out = 0
        self.pending_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(KEPT):
            return
        line = (datetime.fromtimestamp(record.created, UTC), record.levelname, record.name[:100], self.format(record))
        with self.pending_lock:
            if self.kept + len(self.pending) < self.limit:
                self.pending.append((*line[:3], line[3][:MAX_LINE]))
            else:
                self.left_out += 1

    def flush(self) -> None:
        with self.pending_lock:
            lines, self.pending = self.pending, []
        if not lines:
            return
        try:
            with self.database.session() as session:
                logs.append(session, self.job_id, lines)
            self.kept += len(lines)
        except Exception:
            pass

    def __enter__(self) -> JobLogs:
        logging.captureWarnings(True)
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        if self.left_out:
            note = f"{self.left_out} more lines were not kept (JOB_LOG_LINES is {self.limit})"
            self.pending.append((datetime.now(UTC), "WARNING", __name__, note))
        self.flush()
