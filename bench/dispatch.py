"""How fast a job starts, and what a small job costs beyond its training, in production mode.

On a fresh PostgreSQL database (127.0.0.1:5432, created and dropped here), Redis (127.0.0.1:6379, a queue of
its own), `steadyfit api` and two `steadyfit worker` processes (one job at a time each):
1. dispatch: tiny jobs submitted one after another, each once the previous has ended, so a worker is idle;
   submit → running is the job's `started_at - created_at`, both read from this machine's clock (by the
   API when it writes the row, by the worker when it claims it);
2. small jobs: 200 iris jobs of 20 epochs submitted at once; jobs per minute from the first submission to
   the last end, and each job's overhead: `finished_at - started_at` minus the sum of its epochs'
   `epoch_seconds` (data loading, model set-up, per-epoch writes and checkpoints, the test evaluation,
   storing the weights).
The API runs with API keys on (`STEADYFIT_AUTH=keys`), as in production: every request sends a key made
for the run, so the key check is part of what is measured. Everything it starts it stops, even on failure.
Run: `python bench/dispatch.py`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    ROOT,
    api_key_headers,
    free_port,
    migrated_env,
    postgres_database,
    redis_queue,
    stop_group,
)

TERMINAL = {"succeeded", "failed", "cancelled"}


def tiny_job(epochs: int, seed: int) -> dict[str, Any]:
    return {
        "dataset": {"name": "iris"},
        "model": {"hidden_layers": [8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs, "batch_size": 16, "seed": seed},
    }


@contextmanager
def steadyfit(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `steadyfit` command as a child process group, stopped (group and all) afterwards."""
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "steadyfit.cli", *args]
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop_group(process, 30)


def wait_healthy(client: httpx.Client, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the API exited during start-up")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the API did not become healthy")


def submit(client: httpx.Client, spec: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=spec)
    response.raise_for_status()
    job_id: str = response.json()["id"]
    return job_id


def wait_ended(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
            return job
        time.sleep(0.02)
    raise RuntimeError(f"job {job_id} did not end within {timeout} s")


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def dispatch(client: httpx.Client, jobs: int) -> None:
    latencies = []
    for seed in range(jobs):
        job = wait_ended(client, submit(client, tiny_job(epochs=5, seed=seed)), timeout=120)
        latencies.append(seconds_between(job["created_at"], job["started_at"]))
    print(f"dispatch, submit → running with an idle worker ({jobs} jobs): {quantiles(latencies)}")


def small_jobs(client: httpx.Client, jobs: int, epochs: int, timeout: float) -> None:
    ids = [submit(client, tiny_job(epochs=epochs, seed=seed)) for seed in range(jobs)]
    ended = [wait_ended(client, job_id, timeout) for job_id in ids]
    first = min(job["created_at"] for job in ended)
    last = max(job["finished_at"] for job in ended)
    wall = seconds_between(first, last)
    overheads = []
    for job in ended:
        items = client.get(f"/v1/jobs/{job['id']}/metrics").json()["items"]
        training = sum(item["epoch_seconds"] for item in items)
        overheads.append(seconds_between(job["started_at"], job["finished_at"]) - training)
    print(f"small jobs ({jobs} x iris, {epochs} epochs, 2 workers): {jobs / wall * 60:.0f} jobs/min ({wall:.1f} s)")
    print(f"overhead per job (wall - training): {quantiles(overheads)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dispatch-jobs", type=int, default=30, help="Jobs for the dispatch latency (default 30).")
    parser.add_argument("--jobs", type=int, default=200, help="Small jobs submitted at once (default 200).")
    parser.add_argument("--epochs", type=int, default=20, help="Epochs of each small job (default 20).")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steadyfit-bench-")))
        env = migrated_env(stack.enter_context(postgres_database()), stack.enter_context(redis_queue()), tmp)
        headers = api_key_headers(env["STEADYFIT_DATABASE_URL"])
        port = free_port()
        api = stack.enter_context(steadyfit(["api", "--port", str(port)], env, tmp / "api.log"))
        for n in range(2):
            stack.enter_context(steadyfit(["worker", "--concurrency", "1"], env, tmp / f"worker-{n}.log"))
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30))
        wait_healthy(client, api)
        warm_up = [submit(client, tiny_job(epochs=1, seed=seed)) for seed in range(4)]
        for job_id in warm_up:  # the workers start their training processes before anything is timed
            wait_ended(client, job_id, timeout=180)
        dispatch(client, args.dispatch_jobs)
        small_jobs(client, args.jobs, args.epochs, timeout=900)


if __name__ == "__main__":
    main()
