from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.db.migrate import upgrade
from core.settings import Settings
from service.app import create_app
from tests.fixtures import (
    PG_SERVER,
    REDIS_URL,
    Process,
    bearer,
    create_key,
    free_port,
    postgres_database,
    settings_env,
    wait_until_healthy,
)
from workers.environment import prepare_torch

# The engine tests train in this process, which must find what a worker's torch finds (workers/environment.py):
# OpenMP threads that sleep rather than spin (or a busy machine slows them a hundredfold), and kernels whose
# numbers are the same on any CPU (the golden metrics and the README's are compared bit for bit, or to the
# digit). Read when torch loads, later.
prepare_torch(Settings())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report carries the logs of the service processes it started."""
    report = yield
    if report.failed:
        for process in Process.started:
            report.sections.append((f"log of steadyfit {' '.join(process.args)}", process.log()[-20_000:]))
    if report.when == "teardown":
        Process.started.clear()
    return report


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that each test's database is copied from (much faster than migrating each)."""
    with postgres_database() as name:
        upgrade(f"{PG_SERVER}/{name}")
        yield name


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    with postgres_database(template=pg_template) as name:
        yield f"{PG_SERVER}/{name}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Production-mode settings: this test's own PostgreSQL database and its own Redis queue."""
    return Settings(
        database_url=database_url,
        broker_url=REDIS_URL,
        data_dir=tmp_path / "data",
        queue_name=f"test-{uuid.uuid4().hex[:12]}",
        heartbeat_seconds=0.2,
    )


@pytest.fixture
def api_key(database_url: str) -> str:
    """An API key of the owner `alice` (not an admin), in this test's database."""
    return create_key(database_url, "alice")


@pytest.fixture
def client(settings: Settings, api_key: str) -> Iterator[TestClient]:
    """The app in process, calling as `alice`."""
    with TestClient(create_app(settings), headers=bearer(api_key)) as test_client:
        yield test_client


@pytest.fixture
def client_with(settings: Settings, api_key: str) -> Callable[..., TestClient]:
    """Makes the app in process with some settings changed, calling as `alice`."""

    def make(**changes: Any) -> TestClient:
        return TestClient(create_app(settings.model_copy(update=changes)), headers=bearer(api_key))

    return make


@pytest.fixture
def process_env(settings: Settings) -> dict[str, str]:
    """The environment of the `steadyfit` processes a test starts: its settings (a module may add to them)."""
    return settings_env(settings)


@pytest.fixture
def worker(process_env: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    process = Process(["worker", "--concurrency", "1"], process_env, tmp_path / "worker.log")
    yield process
    process.end()


@pytest.fixture
def start_worker(process_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], Process]]:
    """Starts `steadyfit worker --concurrency 1` processes by name (their logs are `<name>.log`); stops them."""
    started: list[Process] = []

    def start(name: str) -> Process:
        process = Process(["worker", "--concurrency", "1"], process_env, tmp_path / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.end()


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path, api_key: str) -> Iterator[httpx.Client]:
    """`steadyfit api` as a real process; yields an HTTP client pointed at it, calling as `alice`."""
    port = free_port()
    process = Process(["api", "--port", str(port)], settings_env(settings), tmp_path / "api.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        with httpx.Client(base_url=base_url, timeout=10, headers=bearer(api_key)) as http:
            yield http
    finally:
        process.stop()
