"""What the benchmarks that run real servers share: where PostgreSQL and Redis are, throwaway databases and
queues of their own that are removed whatever happens, and an API key for the production-mode API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

from core.db.engine import Database
from core.tenants import keys

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("STEADYFIT_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("STEADYFIT_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database of our own; dropped afterwards, whatever happens."""
    name = f"steadyfit_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment of `steadyfit serve`: SQLite, the file-system queue and artifacts all in `data_dir`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STEADYFIT_")}
    env.update(
        STEADYFIT_DATA_DIR=str(data_dir),
        # One client here asks for more than the share a rate limit gives one client in production; the
        # limit is still checked on every /v1 request, so what the check costs is measured.
        STEADYFIT_RATE_LIMIT_PER_SECOND="1000000",
    )
    return env


def steadyfit_env(database_url: str, queue_name: str, data_dir: Path) -> dict[str, str]:
    """The environment of a `steadyfit` command in production mode: this database, Redis, this queue."""
    env = embedded_env(data_dir)
    env.update(STEADYFIT_DATABASE_URL=database_url, STEADYFIT_BROKER_URL=REDIS_URL, STEADYFIT_QUEUE_NAME=queue_name)
    return env


def migrated_env(database_url: str, queue_name: str, data_dir: Path) -> dict[str, str]:
    """`steadyfit_env` for a database that `steadyfit migrate` has just brought to the newest schema."""
    env = steadyfit_env(database_url, queue_name, data_dir)
    migrated = subprocess.run(
        [sys.executable, "-m", "steadyfit.cli", "migrate"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"steadyfit migrate failed:\n{migrated.stdout}{migrated.stderr}")
    return env


def api_key_headers(database_url: str, owner: str = "bench") -> dict[str, str]:
    """A new (non-admin) API key for `owner` in this migrated database, as the headers that send it."""
    database = Database(database_url, pooled=False)
    try:
        with database.session() as session:
            secret = keys.create(session, owner, admin=False)[1]
    finally:
        database.dispose()
    return {"Authorization": f"Bearer {secret}"}


@contextmanager
def redis_queue() -> Iterator[str]:
    name = f"steadyfit-bench-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(name)
        client.close()


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process and everything it started; SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("steadyfit api exited")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("steadyfit api did not become healthy")
