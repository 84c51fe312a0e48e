"""The `steadyfit` command as a user runs it: against a real `steadyfit api` process, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from rich.console import Console

from core.db.engine import Database
from core.db.models import Job
from core.settings import Settings
from steadyfit.commands import FollowProgress
from tests.fixtures import ROOT, Process, free_port, table_cells, tiny_spec, wait_for

BAR = "━"


def steadyfit(args: list[str], columns: str = "80", **env: str) -> subprocess.CompletedProcess[str]:
    """`steadyfit ARGS` in a terminal `columns` wide (as rich reads COLUMNS), with `env` added."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEADYFIT_")}
    environ.update(COLUMNS=columns, **env)
    command = [sys.executable, "-m", "steadyfit.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def against(http: httpx.Client) -> dict[str, str]:
    """The environment that points the command at the test's server, with alice's key."""
    return {"STEADYFIT_URL": str(http.base_url), "STEADYFIT_API_KEY": http.headers["Authorization"].split()[1]}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


def test_a_port_in_use_is_one_line_that_suggests_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = steadyfit(["serve", "--port", str(port)], STEADYFIT_DATA_DIR=str(tmp_path / "data"))

    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", f"--port {port + 1}", "make serve PORT=")
    assert not (tmp_path / "data").exists()  # refused before it migrated or started a worker


def test_a_missing_or_broken_spec_and_a_server_that_is_down_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset": {"name": "iris"},\n "model": }')
    down = {"STEADYFIT_URL": f"http://127.0.0.1:{free_port()}"}

    assert_one_line_error(steadyfit(["submit", str(tmp_path / "nope.json")]), "nope.json", "No such file")
    assert_one_line_error(steadyfit(["submit", str(broken)]), "broken.json, line 2 column 11")
    assert_one_line_error(steadyfit(["jobs"], **down), f"no answer from {down['STEADYFIT_URL']}", "steadyfit serve")


def test_ids_are_printed_whole_and_a_short_prefix_names_a_job(api_server: httpx.Client, settings: Settings) -> None:
    env = against(api_server)
    job = api_server.post("/v1/jobs", json=tiny_spec(name="solo")).json()
    twins = ["abcdef12-0000-4000-8000-000000000001", "abcdef12-0000-4000-8000-000000000002"]
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        for twin in twins:
            session.add(Job(id=twin, owner="alice", status="queued", task="classification", spec=tiny_spec()))
    database.dispose()

    listed = steadyfit(["jobs"], columns="120", **env)
    shown = steadyfit(["show", job["id"][:8].upper()], **env)
    ambiguous = steadyfit(["show", "abcdef12"], **env)
    metrics = steadyfit(["metrics", twins[1][:-1] + "2", "--csv"], **env)

    assert listed.returncode == 0, listed.stderr
    assert {job["id"], *twins} <= set(listed.stdout.split())
    assert shown.returncode == 0, shown.stderr
    assert job["id"] in shown.stdout.split() and "solo" in shown.stdout
    assert ambiguous.returncode == 1 and "Traceback" not in ambiguous.stderr
    assert "`abcdef12` starts the ids of several jobs" in ambiguous.stderr
    assert set(twins) <= set(ambiguous.stderr.split())
    assert metrics.returncode == 0 and metrics.stdout.startswith("epoch"), metrics.stderr
    assert_one_line_error(steadyfit(["show", "abcdef"], **env), "too short", "8 characters")
    assert_one_line_error(steadyfit(["cancel", "12345678"], **env), "no job whose id starts with `12345678`")
    assert_one_line_error(steadyfit(["show", "not-a-job-id"], **env), "no job `not-a-job-id`", "404")


def test_a_rejected_spec_is_one_line_with_the_problems_detail(api_server: httpx.Client, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(model={"hidden_layers": [8], "dropout": 1.5})))

    result = steadyfit(["submit", str(spec)], **against(api_server))

    assert_one_line_error(result, "steadyfit submit: model.dropout: Input should be less than 1", "(HTTP 422)")


def test_the_follow_display_keeps_status_and_bar_in_80_columns() -> None:
    console = Console(width=80, record=True)
    progress = FollowProgress(console)
    line = "train_loss 0.1234  val_loss 0.0812  val_accuracy 0.9750  best 12  stops in 3"
    task = progress.add_task("epochs", total=100, status="succeeded", line=line)
    progress.update(task, completed=50)

    console.print(progress.get_renderable())
    text = console.export_text()

    bar_line, metrics_line = text.splitlines()
    assert bar_line.startswith("succeeded ") and "50/100" in bar_line
    assert bar_line.count(BAR) == 20  # half of the 40-column bar
    assert metrics_line == line


def test_submit_follow_shows_the_whole_run_in_80_columns(
    api_server: httpx.Client, worker: Process, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(tiny_spec()))  # YAML is a superset of JSON

    result = steadyfit(["submit", str(spec), "--follow"], **against(api_server))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    bar = next(line for line in lines if "5/5" in line)
    assert bar.startswith("succeeded ") and BAR * 40 in bar, result.stdout
    assert any(line.startswith("train_loss ") and "val_accuracy" in line for line in lines), result.stdout


def test_ctrl_c_while_following_stops_quietly_and_the_job_trains_on(api_server: httpx.Client, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec()))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEADYFIT_")}
    environ.update(COLUMNS="80", **against(api_server))
    command = [sys.executable, "-m", "steadyfit.cli", "submit", str(spec), "--follow"]
    follow = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: api_server.get("/v1/jobs").json()["items"], 60, "the job to be submitted")
    follow.send_signal(signal.SIGINT)
    _, stderr = follow.communicate(timeout=60)

    assert follow.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert api_server.get("/v1/jobs").json()["items"][0]["status"] == "queued"  # no worker here; not cancelled


def test_chart_writes_a_png_and_names_the_charts_for_a_wrong_name(api_server: httpx.Client, tmp_path: Path) -> None:
    job_id = api_server.post("/v1/jobs", json=tiny_spec()).json()["id"]
    out = tmp_path / "learning.png"

    drawn = steadyfit(["chart", job_id[:8], "learning", "--png", str(out)], **against(api_server))
    assert drawn.returncode == 0, drawn.stderr
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    spec = json.loads(steadyfit(["chart", job_id, "reg"], **against(api_server)).stdout)
    assert spec["title"].endswith("regularization")

    wrong = steadyfit(["chart", job_id, "curves"], **against(api_server))
    assert_one_line_error(wrong, "no chart `curves`", "learning_curves, regularization")


def test_diagnose_prints_the_verdict_so_far(api_server: httpx.Client) -> None:
    job_id = api_server.post("/v1/jobs", json=tiny_spec()).json()["id"]
    result = steadyfit(["diagnose", job_id[:8]], **against(api_server))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("good fit (so far: the job is queued)")
    assert "enough_epochs: False" in result.stdout


def test_analysis_of_a_job_without_one_is_a_one_line_error(api_server: httpx.Client) -> None:
    job_id = api_server.post("/v1/jobs", json=tiny_spec()).json()["id"]
    result = steadyfit(["analysis", job_id, "pruning"], **against(api_server))
    assert_one_line_error(result, f"job `{job_id}` has no pruning analysis", "(HTTP 404)")
    wrong = steadyfit(["analysis", job_id, "landscape", "--run", "--option", "points"], **against(api_server))
    assert_one_line_error(wrong, "--option takes NAME=VALUE, got `points`")


def table_rows(printed: str) -> list[list[str]]:
    """The cells of each job's row in a table that `steadyfit jobs` printed."""
    rows = [[cell.strip() for cell in line.split("│")] for line in printed.splitlines()]
    return [cells for cells in rows if len(cells) > 2 and len(cells[1]) == 36]


def test_submit_labels_a_job_and_jobs_filters_and_orders(api_server: httpx.Client, tmp_path: Path) -> None:
    env = against(api_server)
    names = {"wide": 0.3, "narrow": 0.1, "blue": 0.3}
    for name, dropout in names.items():
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps(tiny_spec(name=name, model={"hidden_layers": [8], "dropout": dropout})))
        team = "blue" if name == "blue" else "red"
        submitted = steadyfit(["submit", str(spec), "--project", "vision", "--tag", f"team:{team}"], **env)
        assert submitted.returncode == 0, submitted.stderr

    query = ["--project", "vision", "--tag", "team:red", "--where", "model.dropout>=0.2", "--order-by", "created_at"]
    listed = steadyfit(["jobs", *query], columns="160", **env)
    everything = steadyfit(["jobs", "--order-by=-created_at"], columns="160", **env)

    assert listed.returncode == 0, listed.stderr
    assert [cells[2:4] for cells in table_rows(listed.stdout)] == [["wide", "vision"]]
    assert [cells[2] for cells in table_rows(everything.stdout)] == ["blue", "narrow", "wide"]
    assert_one_line_error(steadyfit(["jobs", "--tag", "team"], **env), "`team` is not a tag", "key:value")
    assert_one_line_error(steadyfit(["jobs", "--where", "model.dropout>=x"], **env), "at character 16", "(HTTP 422)")


def test_queue_and_show_tell_where_a_waiting_job_stands(api_server: httpx.Client) -> None:
    env = against(api_server)
    job_ids = [api_server.post("/v1/jobs", json=tiny_spec()).json()["id"] for _ in range(2)]  # no worker: they wait

    queue = steadyfit(["queue"], **env)
    shown = steadyfit(["show", job_ids[1]], **env)

    assert queue.returncode == 0, queue.stderr
    assert table_cells(queue.stdout) == [["owner", "queued", "running"], ["alice", "2", "0"], ["all owners", "2", "0"]]
    assert shown.returncode == 0, shown.stderr
    assert ["queue_position", "2"] in table_cells(shown.stdout)
