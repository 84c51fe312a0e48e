"""What a poll of the embedded mode costs in CPU, in process, on a fresh SQLite database (no servers):

  - the uncached full-history page of a job of 1,000 epochs x 6 metrics: its epochs query, then its JSON
    joined from the stored texts (service/jobs/metrics_json.py), against the same page decoded into a
    `MetricsPage` and encoded by pydantic;
  - the candidate signals that a job changed, read by the API's watcher each round: `PRAGMA data_version` on
    a connection of its own, and a stat of the WAL file (which a change counter in a shared file would cost
    too); and the query that follows a move, the ETag columns of 1, 10 and 100 kept jobs.
Each figure is the median of many repetitions of CPU time (`time.process_time`), so other load on the machine
moves it less than it moves wall time.
Run: `python bench/embedded.py`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from api import EPOCHS, OWNER, SPEC, epoch_metrics

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job
from core.db.notifications import DataVersion
from core.jobs import repository
from core.spec.job import JobSpec
from core.states import JobStatus
from service.jobs import metrics_json
from service.jobs.schemas import MetricsPage


def cpu_ms(action: Callable[[], Any], repeat: int) -> float:
    """The median CPU time of `action`, in ms."""
    times = []
    for _ in range(repeat):
        began = time.process_time()
        action()
        times.append(time.process_time() - began)
    return statistics.median(times) * 1000


def running_jobs(database: Database, count: int) -> list[str]:
    spec = JobSpec.model_validate(SPEC).model_dump(mode="json")
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with database.session() as session:
        for job_id in ids:
            repository.add(session, Job(id=job_id, status=JobStatus.QUEUED, task="classification", spec=spec))
    with database.session() as session:
        for job_id in ids:
            repository.claim(session, job_id, OWNER, lease_seconds=3600, max_attempts=10)
    return ids


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="steadyfit-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'steadyfit.db'}"
        upgrade(url)
        database = Database(url)
        jobs = running_jobs(database, 100)
        job = jobs[0]
        for epoch in range(1, EPOCHS + 1):
            metrics = epoch_metrics(epoch)
            with database.session() as session:
                repository.record_epoch(session, job, OWNER, epoch, metrics, epoch, metrics)
        print(f"{EPOCHS} epochs x 6 metrics; CPU ms, median\n")
        print("| step | ms |")
        print("| --- | ---: |")
        with database.autocommit_session() as session:
            rows = repository.epoch_texts(session, job, 0, None, EPOCHS)

            def model_page() -> bytes:
                items = repository.decoded(rows)
                return MetricsPage(job_id=job, status="running", items=items).model_dump_json().encode()

            figures = {
                "the epochs query (1,000 rows of JSON text)": lambda: repository.epoch_texts(
                    session, job, 0, None, EPOCHS
                ),
                "its JSON joined from the stored texts (now)": lambda: metrics_json.metrics_page(job, "running", rows),
                "its JSON through `MetricsPage` (before: decode, validate, encode)": model_page,
            }
            for name, action in figures.items():
                print(f"| {name} | {cpu_ms(action, 200):.2f} |")
            for kept in (1, 10, 100):
                marks = cpu_ms(partial(repository.change_marks, session, jobs[:kept]), 500)
                print(f"| after a move: the ETag columns of {kept} kept job(s) | {marks:.3f} |")
        data_version = DataVersion(url)
        wal = url.removeprefix("sqlite:///") + "-wal"
        print(f"| a round: `PRAGMA data_version` | {cpu_ms(data_version.read, 20_000):.4f} |")
        print(f"| a round: stat of the WAL file | {cpu_ms(lambda: os.stat(wal), 20_000):.4f} |")
        data_version.close()
        database.dispose()


if __name__ == "__main__":
    main()
