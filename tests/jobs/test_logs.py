"""A job's log lines through a real worker: the runner's and each epoch's lines, a failure's traceback before
the status says failed, `steadyfit logs`, the JOB_LOG_LINES bound, and another owner's 404."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from core.db.engine import Database
from core.jobs import logs
from tests.fixtures import Process, bearer, create_key, tiny_spec, wait_for_job
from tests.test_cli import against, steadyfit
from workers.job_logs import JobLogs


def lines(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(f"/v1/jobs/{job_id}/logs").json()["items"]
    return items


def test_a_jobs_log_has_its_epochs_and_a_failures_traceback(
    api_server: httpx.Client, worker: Process, database_url: str
) -> None:
    source = wait_for_job(api_server, api_server.post("/v1/jobs", json=tiny_spec()).json()["id"])
    assert source["status"] == "succeeded"
    written = lines(api_server, source["id"])
    assert [line["seq"] for line in written] == list(range(1, len(written) + 1))
    messages = [line["message"] for line in written]
    assert any(m.startswith("epoch 1: train_loss ") for m in messages) and any("epoch 5: " in m for m in messages)
    assert any("succeeded: max_epochs after 5 epochs" in m for m in messages)
    assert api_server.get(f"/v1/jobs/{source['id']}/logs", params={"after": 2}).json()["items"][0]["seq"] == 3

    wrong = tiny_spec(dataset={"name": "breast_cancer"}, init_from={"job_id": source["id"]})
    failed = wait_for_job(api_server, api_server.post("/v1/jobs", json=wrong).json()["id"])
    assert failed["status"] == "failed"
    error = next(line for line in lines(api_server, failed["id"]) if line["level"] == "ERROR")
    assert "Traceback (most recent call last)" in error["message"]
    assert "cannot load `hidden0.linear.weight`" in error["message"] and error["logger"] == "workers.runner"

    printed = steadyfit(["logs", failed["id"][:8], "--follow"], **against(api_server))
    assert printed.returncode == 0 and "Traceback (most recent call last)" in printed.stdout, printed.stderr
    bob = bearer(create_key(database_url, "bob"))
    assert api_server.get(f"/v1/jobs/{source['id']}/logs", headers=bob).status_code == 404


def test_past_job_log_lines_one_line_says_how_many_were_left_out(client: Any, database_url: str) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    database = Database(database_url)
    with JobLogs(database, job_id, limit=3):
        for i in range(5):
            logging.getLogger("workers.runner").warning("line %d", i)
        logging.getLogger("celery.worker").warning("not the job's")
    with database.session() as session:
        kept = [(line.seq, line.message) for line in logs.after(session, job_id, 0, 100)]
    assert kept == [(1, "line 0"), (2, "line 1"), (3, "line 2"), (4, "2 more lines were not kept (JOB_LOG_LINES is 3)")]
