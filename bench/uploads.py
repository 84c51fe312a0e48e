"""Peak memory of the process that parses an upload: a real `steadyfit api`, for the worst uploads a security
review found and the largest the default caps let through.

Each case gets a fresh `steadyfit api` (one process, PostgreSQL on a database of its own and Redis, API keys
on, default settings). One small upload first, so pyarrow and the routes are loaded; then the API's peak
RSS is reset (`/proc/PID/clear_refs`) and the case is uploaded from a file, streamed by httpx. It prints the
status, the request's time, the API's RSS when it started (idle), before the upload, and its peak RSS
during it (`VmHWM`, the kernel's high-water mark). The cases:
  unique-63k      a 63 KiB CSV whose `user` column is a unique string per row (the review's file);
  unique-650k     the same at 650 KiB (before the caps, over 20 GB to encode);
  parquet-400k    a small Parquet file of 400,000 rows, one of them a text column;
  categories-cap  a CSV with a text column of 1,000 values (`max_categories`) and as many rows as
                  `max_encoded_bytes` allows: the largest one-hot encoding the defaults let through;
  numeric-100m    a numeric CSV just under `max_upload_bytes` (100 MiB), one-digit cells: 100 columns and a
                  label, 52 million numbers.
Run: `python bench/uploads.py [CASE ...]` (PostgreSQL and Redis on 127.0.0.1); `--old PATH` also runs the
cases that the code checked out at PATH survives (e.g. `git archive <commit> | tar -x -C PATH`).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from harness import (
    ROOT,
    api_key_headers,
    free_port,
    postgres_database,
    redis_queue,
    steadyfit_env,
    stop_group,
    wait_healthy,
)

MIB = 2**20


def unique_strings(size: int) -> bytes:
    lines = ["x,user,label"]
    total, i = len(lines[0]) + 1, 0
    while total < size:
        line = f"{i % 7},user-{i:07d},{i % 2}"
        lines.append(line)
        total += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()


def parquet_400k() -> bytes:
    rows = 400_000
    index = np.arange(rows)
    colour = pa.DictionaryArray.from_arrays((index % 3).astype(np.int32), ["red", "green", "blue"])
    table = pa.table({"x": index % 7, "colour": colour, "label": index % 2})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def categories_at_cap(categories: int = 1000, max_encoded_bytes: int = 256 * MIB) -> bytes:
    rows = max_encoded_bytes // ((categories + 1) * 4)
    lines = ["x,category,label"] + [f"{i % 7},c{i % categories:04d},{i % 2}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def numeric_csv(size: int = 100 * MIB - 4096, columns: int = 100) -> bytes:
    """One-digit cells: the most cells, so the most numbers, that a file of this size holds."""
    header = (",".join(f"x{i}" for i in range(columns)) + ",label\n").encode()
    width = 2 * (columns + 1)
    rows = (size - len(header)) // width
    cells = np.full((rows, width), ord(","), dtype=np.uint8)
    cells[:, 0::2] = ord("0") + np.random.default_rng(0).integers(0, 10, (rows, columns + 1), dtype=np.uint8)
    cells[:, -2] = ord("0") + (np.arange(rows) % 2)
    cells[:, -1] = ord("\n")
    return header + cells.tobytes()


CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "unique-63k": (lambda: unique_strings(63 * 1024), "file.csv"),
    "unique-650k": (lambda: unique_strings(650 * 1024), "file.csv"),
    "parquet-400k": (parquet_400k, "file.parquet"),
    "categories-cap": (categories_at_cap, "file.csv"),
    "numeric-100m": (numeric_csv, "file.csv"),
}
OLD_SAFE = ("unique-63k", "parquet-400k")  # the others would take the machine's memory with the old code


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def post(base_url: str, headers: dict[str, str], path: Path) -> httpx.Response:
    with path.open("rb") as file:
        files = {"file": (path.name, file)}
        form = {"target": "label", "task": "classification"}
        return httpx.post(f"{base_url}/v1/datasets", files=files, data=form, headers=headers, timeout=600)


@contextmanager
def api_server(code: Path, directory: Path) -> Iterator[tuple[int, str, dict[str, str]]]:
    """`steadyfit api` from the code at `code`: its pid, address and a key's headers."""
    with postgres_database() as database_url, redis_queue() as queue:
        env = {**steadyfit_env(database_url, queue, directory / "data"), "PYTHONPATH": str(code)}
        subprocess.run(
            [sys.executable, "-m", "steadyfit.cli", "migrate"], env=env, cwd=code, check=True, capture_output=True
        )
        headers = api_key_headers(database_url)
        port = free_port()
        command = [sys.executable, "-m", "steadyfit.cli", "api", "--port", str(port)]
        log = (directory / "api.log").open("wb")
        process = subprocess.Popen(command, env=env, cwd=code, stdout=log, stderr=log, start_new_session=True)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_healthy(base_url, process)
            yield process.pid, base_url, headers
        finally:
            stop_group(process, grace=10)
            log.close()


def measure(case: str, code: Path) -> dict[str, object]:
    make, filename = CASES[case]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        warm, upload = directory / "warm.csv", directory / filename
        warm.write_bytes(unique_strings(2000))
        upload.write_bytes(make())
        with api_server(code, directory) as (pid, base_url, headers):
            idle = memory_mib(pid, "VmRSS")
            assert post(base_url, headers, warm).status_code == 201
            before = memory_mib(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
            start = time.perf_counter()
            response = post(base_url, headers, upload)
            seconds = time.perf_counter() - start
            peak = memory_mib(pid, "VmHWM")
        body = response.json()
        outcome = body.get("detail", "") if response.status_code >= 400 else f"{len(body['feature_names'])} features"
        return {
            "file_kib": upload.stat().st_size / 1024,
            "status": response.status_code,
            "outcome": outcome,
            "seconds": seconds,
            "idle_mib": idle,
            "rss_before_mib": before,
            "peak_mib": peak,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", metavar="CASE", default=list(CASES), help=", ".join(CASES))
    parser.add_argument("--old", type=Path, help="Also run the cases the old code survives, from this checkout.")
    args = parser.parse_args()
    runs = [(case, ROOT, "now") for case in args.cases]
    if args.old:
        runs += [(case, args.old.resolve(), "old") for case in args.cases if case in OLD_SAFE]
    print(
        f"{'case':<15} {'code':<4} {'file':>10} {'status':>6} {'time':>7} {'idle':>8} {'before':>8} {'peak':>8}  "
        "outcome"
    )
    for case, code, label in runs:
        f = measure(case, code)
        print(
            f"{case:<15} {label:<4} {f['file_kib']:>6.0f} KiB {f['status']:>6} {f['seconds']:>6.2f}s "
            f"{f['idle_mib']:>4.0f} MiB {f['rss_before_mib']:>4.0f} MiB {f['peak_mib']:>4.0f} MiB  "
            f"{str(f['outcome'])[:60]}"
        )


if __name__ == "__main__":
    main()
