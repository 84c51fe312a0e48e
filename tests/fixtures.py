"""Shared test fixtures: a fresh PostgreSQL database per test, Redis queues per test, real processes."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
from sqlalchemy import create_engine, text

from core.db.engine import Database
from core.jobs import repository as jobs_repository
from core.settings import Settings
from core.states import JobStatus, StopReason
from core.tenants import keys
from service.sweeps.router import EXAMPLE_SWEEP

PG_SERVER = os.environ.get("STEADYFIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("STEADYFIT_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
# A landscape analysis's result, as a worker stores it: small slices, finite throughout.
LANDSCAPE_RESULT = {
    "slices": {
        "1d": {"alpha": [-1.0, 0.0, 1.0], "train": [2.0, 0.1, 1.5], "val": [2.2, 0.3, 1.8]},
        "2d": {"alpha": [-1.0, 1.0], "beta": [-1.0, 1.0], "train": [[2.0, 1.0], [1.2, 0.5]]},
    },
    "top_eigenvalue": 12.5,
    "hessian_trace": 100.0,
    "sharpness": 0.4,
}

# The example spec of the README and of issue #2, accepted exactly as it is. examples/digits.json links to
# the package's service/jobs/digits.json, which the API also shows as its example.
DIGITS_SPEC: dict[str, Any] = json.loads((ROOT / "examples" / "digits.json").read_text())


def tiny_spec(**overrides: Any) -> dict[str, Any]:
    """A job that trains in well under a second: iris, one small hidden layer."""
    spec: dict[str, Any] = {
        "dataset": {"name": "iris"},
        "model": {"hidden_layers": [8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 5, "batch_size": 16, "seed": 1},
    }
    spec.update(overrides)
    return spec


def table_csv(rows: int = 60) -> bytes:
    """A small CSV with numeric and text features and a yes/no label, as a user would upload."""
    lines = ["x1,x2,colour,label"]
    for i in range(rows):
        lines.append(f"{i % 7},{(i * 3) % 11},{['red', 'blue'][i % 2]},{'yes' if i % 3 else 'no'}")
    return ("\n".join(lines) + "\n").encode()


def upload_table(client: Any, headers: dict[str, str]) -> str:
    """Uploads `table_csv()` as a classification data set through `client`; returns its id."""
    response = client.post(
        "/v1/datasets",
        files={"file": ("table.csv", table_csv(), "text/csv")},
        data={"target": "label", "task": "classification"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def admin_engine() -> Any:
    return create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new, uniquely named database (copied from `template` when given); dropped afterwards."""
    name = f"steadyfit_test_{uuid.uuid4().hex[:12]}"
    engine = admin_engine()
    with engine.connect() as connection:
        suffix = f" TEMPLATE {template}" if template else ""
        connection.execute(text(f"CREATE DATABASE {name}{suffix}"))
    try:
        yield name
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb on a free port), so a test may stop and start it."""

    def __init__(self) -> None:
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="steadyfit-pg-"))
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYFIT_")}
    env.update(
        STEADYFIT_DATA_DIR=str(settings.data_dir),
        STEADYFIT_QUEUE_NAME=settings.queue_name,
        STEADYFIT_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        STEADYFIT_LEASE_SECONDS=str(settings.lease_seconds),
        STEADYFIT_RECONCILE_SECONDS=str(settings.reconcile_seconds),
        STEADYFIT_MAX_ATTEMPTS=str(settings.max_attempts),
        STEADYFIT_ANALYSIS_SECONDS=str(settings.analysis_seconds),
        STEADYFIT_AUTH=settings.auth,
    )
    if settings.database_url:
        env["STEADYFIT_DATABASE_URL"] = settings.database_url
    if settings.broker_url:
        env["STEADYFIT_BROKER_URL"] = settings.broker_url
    if settings.max_wall_seconds:
        env["STEADYFIT_MAX_WALL_SECONDS"] = str(settings.max_wall_seconds)
    if settings.artifact_url:
        env["STEADYFIT_ARTIFACT_URL"] = settings.artifact_url
    if settings.s3_endpoint_url:
        env["STEADYFIT_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return env


def create_key(database_url: str, owner: str, *, admin: bool = False) -> str:
    """A new API key in the database at `database_url`, as `steadyfit keys create` makes it."""
    database = Database(database_url, pooled=False)
    try:
        with database.session() as session:
            return keys.create(session, owner, admin=admin)[1]
    finally:
        database.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Process:
    """A `steadyfit` command running as a real child process, its output in a log file."""

    # The processes the running test started; a failing test's report shows their logs (conftest.py).
    started: ClassVar[list[Process]] = []

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        Process.started.append(self)
        self.args, self.log_path = args, log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "steadyfit.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20, group: bool = True) -> None:
        """Send `sig` to the process (and to every process it started, with `group`), then wait."""
        if self.popen.poll() is None:
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()

    def end(self) -> None:
        """Kill the process and all it started, at a test's end: a worker's graceful stop costs a second or so,
        and only the tests of graceful stops (tests/test_faults.py) need one, which they make themselves."""
        self.stop(signal.SIGKILL)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.1,
    progress: Callable[[], Any] | None = None,
) -> Any:
    """Call `condition` until it returns something truthy, and return that. It fails after `timeout` seconds;
    with `progress`, after `timeout` seconds in which `progress()` returned nothing new: a loaded machine
    trains slowly but on, a stuck job stands still, and only the second is a failure."""
    deadline = time.monotonic() + timeout
    mark = progress() if progress is not None else None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if progress is not None and (now := progress()) != mark:
            mark, deadline = now, time.monotonic() + timeout
        time.sleep(interval)
    raise AssertionError(f"{timeout}s {'without progress ' if progress else ''}waiting for {what}")


def wait_until_healthy(base_url: str, process: Process, timeout: float = 60) -> None:
    def healthy() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.log()}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout, f"{base_url}/healthz")


@contextmanager
def api_process(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`steadyfit api` as a real process with this environment, healthy; yields its base URL."""
    port = free_port()
    process = Process(["api", "--port", str(port)], env, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        yield base_url
    finally:
        process.stop()


@contextmanager
def embedded_serve(data_dir: Path, log_path: Path, *args: str) -> Iterator[tuple[Process, str]]:
    """`steadyfit serve` (with `args`) as a real process, its database and queue in `data_dir`, healthy; yields it
    and its base URL. Stopped as a service manager would: SIGTERM to `serve` alone, which must stop its own worker."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYFIT_")}
    env["STEADYFIT_DATA_DIR"] = str(data_dir)
    serve = Process(["serve", "--port", str(port), *args], env, log_path)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(base_url, serve)
        yield serve, base_url
    finally:
        serve.stop(group=False)


def wait_for_job(
    client: httpx.Client, job_id: str, stall: float = 120, statuses: tuple[str, ...] = (), epochs: int = 0
) -> Any:
    """Poll until the job is in one of `statuses` (default: any terminal status), or has `epochs` epochs when
    given; returns the job. Fails only when the job stands still (no new status, attempt or epoch) for `stall`
    seconds, however long it takes to get there on a loaded machine."""
    wanted = statuses or ("succeeded", "failed", "cancelled")
    last: dict[str, Any] = {}

    def done() -> Any:
        last.update(client.get(f"/v1/jobs/{job_id}").json())
        reached = last["epochs_completed"] >= epochs if epochs else last["status"] in wanted
        return dict(last) if reached else None

    def moved() -> Any:
        return last.get("status"), last.get("attempts"), last.get("epochs_completed")

    goal = f"{epochs} epochs" if epochs else str(wanted)
    return wait_for(done, stall, f"job {job_id}: {goal}", interval=0.2, progress=moved)


def sweep_body(**overrides: Any) -> dict[str, Any]:
    """The API's example sweep (issue #6's: TPE over dropout, L2 and lr, Hyperband) on the tiny iris job."""
    body: dict[str, Any] = copy.deepcopy(EXAMPLE_SWEEP)
    body.update(
        name="iris-regularization",
        base=tiny_spec(training={"epochs": 9, "batch_size": 16, "seed": 1}),
        max_trials=8,
        pruner={"name": "hyperband", "min_epochs": 1},
    )
    body.update(overrides)
    return body


def path_body(**changes: Any) -> dict[str, Any]:
    """A path of three L2 strengths on `tiny_spec()`."""
    values = [0.1, 0.01, 0.001]
    return {"name": "l2", "base": tiny_spec(), "parameter": "regularization.l2", "values": values, **changes}


def finish_as_a_worker(database_url: str, job_id: str, val_loss: float, se: float) -> None:
    """What a worker writes when a job ends: its one epoch (the best), then `succeeded`."""
    with Database(database_url).session() as session:
        assert jobs_repository.claim(session, job_id, "w1", lease_seconds=60, max_attempts=3) is not None
        best = {"val_loss": val_loss, "val_loss_se": se, "data_loss": val_loss - 0.1, "train_loss": val_loss,
                "weight_l1": 3.0, "weight_l2": 1.0, "sparsity": 0.25, "weights_above_threshold": 90.0}  # fmt: skip
        assert jobs_repository.record_epoch(session, job_id, "w1", 1, best, 1, best)
        assert jobs_repository.finish(session, job_id, "w1", JobStatus.SUCCEEDED, stop_reason=StopReason.MAX_EPOCHS)
        session.commit()


def table_cells(printed: str) -> list[list[str]]:
    """The cells of each row (the header's too) of the rich table a command printed."""
    lines = [line.strip().replace("┃", "│") for line in printed.splitlines()]
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]


def finished_analysis(http: httpx.Client, job_id: str, kind: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        response = http.get(f"/v1/jobs/{job_id}/{kind}")
        read: dict[str, Any] = response.json()
        return read if response.status_code == 200 and read["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = wait_for(ended, 60, f"the {kind} analysis of job {job_id}")
    return found
