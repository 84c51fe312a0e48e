"""Predictions over HTTP: one `steadyfit api` process answering with the ONNX export of the README's digits MLP
(examples/digits.json, 64 features, 10 classes).

A fresh PostgreSQL database and Redis queue, API keys on, one `steadyfit worker` that trains the job and
exports its model. Then, against the API:
  (a) latency: 300 sequential requests of 100 rows as JSON (after 30 to warm up), p50 / p95 / p99;
  (b) throughput: requests of 1,000 rows as JSON from 4 client threads for 10 s, rows per second;
  (c) the same rows sent as one 10,000-row `.npz` file to /predict/file, rows per second;
  (d) for scale, onnxruntime in this process on the same 100 rows, no HTTP: the floor (a) stands on.
The client runs on the same machine, so its own CPU is in every figure.
Run: `python bench/predict.py` (PostgreSQL and Redis on 127.0.0.1).
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
from harness import (
    ROOT,
    api_key_headers,
    free_port,
    migrated_env,
    postgres_database,
    redis_queue,
    stop_group,
    wait_healthy,
)
from sklearn.datasets import load_digits

SPEC = json.loads((ROOT / "examples" / "digits.json").read_text())


@contextmanager
def serving(directory: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`steadyfit api` (one process) and one worker: the API's address and a key's headers."""
    with postgres_database() as database_url, redis_queue() as queue:
        env = migrated_env(database_url, queue, directory / "data")
        headers = api_key_headers(database_url)
        port = free_port()
        processes = []
        with (directory / "api.log").open("wb") as log:
            for command in (["api", "--port", str(port)], ["worker", "--concurrency", "1"]):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "steadyfit.cli", *command],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            try:
                base_url = f"http://127.0.0.1:{port}"
                wait_healthy(base_url, processes[0])
                yield base_url, headers
            finally:
                for process in processes:
                    stop_group(process, grace=10)


def trained_job(http: httpx.Client) -> str:
    job_id = str(http.post("/v1/jobs", json=SPEC).json()["id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        export = http.get(f"/v1/jobs/{job_id}/onnx")
        if export.status_code == 200 and export.json()["status"] in ("succeeded", "failed"):
            assert export.json()["status"] == "succeeded", export.json()
            return job_id
        time.sleep(0.5)
    raise RuntimeError("the job did not train and export in 10 minutes")


def latency(http: httpx.Client, job_id: str, rows: list[list[float]]) -> list[float]:
    for _ in range(30):
        http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows}).raise_for_status()
    times = []
    for _ in range(300):
        start = time.perf_counter()
        http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows}).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def throughput(base_url: str, headers: dict[str, str], job_id: str, rows: list[list[float]], seconds: float) -> float:
    counted = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            while time.monotonic() < stop:
                http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows}).raise_for_status()
                with lock:
                    counted[0] += len(rows)

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counted[0] / (time.monotonic() - start)


def file_throughput(http: httpx.Client, job_id: str, x: np.ndarray) -> float:
    buffer = io.BytesIO()
    np.savez(buffer, x=x.astype(np.float32))
    data = buffer.getvalue()
    http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("rows.npz", data)}).raise_for_status()
    start = time.perf_counter()
    for _ in range(5):
        http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("rows.npz", data)}).raise_for_status()
    return 5 * len(x) / (time.perf_counter() - start)


def in_process(model: bytes, rows: np.ndarray) -> float:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(100):
        session.run(None, {"rows": rows})
    times = []
    for _ in range(1000):
        start = time.perf_counter()
        session.run(None, {"rows": rows})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    digits = load_digits().data.astype(np.float32)
    rows100 = digits[:100].tolist()
    rows1000 = np.resize(digits, (1000, 64)).tolist()
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(Path(tmp)) as (base_url, headers),
        httpx.Client(base_url=base_url, headers=headers, timeout=60) as http,
    ):
        job_id = trained_job(http)
        times = sorted(latency(http, job_id, rows100))
        p50, p95, p99 = (times[int(q * len(times))] * 1000 for q in (0.5, 0.95, 0.99))
        print(f"(a) 100 rows as JSON, sequential: p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms")
        rate = throughput(base_url, headers, job_id, rows1000, seconds=10)
        print(f"(b) 1,000-row JSON requests, 4 clients: {rate:,.0f} rows/s")
        from_file = file_throughput(http, job_id, np.resize(digits, (10_000, 64)))
        print(f"(c) 10,000-row .npz file: {from_file:,.0f} rows/s")
        model = http.get(f"/v1/jobs/{job_id}/artifacts/model.onnx").content
    floor = in_process(model, np.asarray(rows100, np.float32)) * 1000
    print(f"(d) onnxruntime in process, 100 rows: {floor:.3f} ms")


if __name__ == "__main__":
    main()
