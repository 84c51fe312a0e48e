"""Sweeps through real processes: `steadyfit api` and two `steadyfit worker`s on PostgreSQL and Redis."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from steadyfit.client import Client
from tests.fixtures import Process, settings_env, sweep_body, tiny_spec, wait_for

WIDE_LR = {"optimizer.lr": {"log_uniform": [1e-4, 1.0]}, "model.dropout": {"values": [0.0, 0.2]}}


@pytest.fixture
def two_workers(settings: Settings, tmp_path: Path) -> Iterator[list[Process]]:
    workers = [
        Process(["worker", "--concurrency", "1"], settings_env(settings), tmp_path / f"worker-{n}.log")
        for n in range(2)
    ]
    try:
        wait_for(lambda: all(" ready." in worker.log() for worker in workers), 120, "two workers to be ready")
        yield workers
    finally:
        for worker in workers:
            worker.end()


def create(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def wait_for_sweep(http: httpx.Client, sweep_id: str, stall: float = 120) -> dict[str, Any]:
    """Poll until the sweep has ended, for as long as its trial counts keep changing at least every `stall` s."""
    last: dict[str, Any] = {}

    def ended() -> Any:
        last.update(http.get(f"/v1/sweeps/{sweep_id}").json())
        return dict(last) if last["status"] != "running" else None

    return wait_for(ended, stall, f"sweep {sweep_id} to end", interval=0.2, progress=lambda: last.get("trials"))


def leaderboard(http: httpx.Client, sweep_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(f"/v1/sweeps/{sweep_id}/trials", params={"sort": "objective"}).json()[
        "items"
    ]
    return items


def overlap(jobs: list[dict[str, Any]]) -> bool:
    """Whether two of these jobs trained at the same time."""
    return any(
        a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
        for a, b in itertools.combinations(jobs, 2)
    )


def test_every_algorithm_and_pruner_runs_its_trials_as_jobs_on_two_workers(
    api_server: httpx.Client, api_key: str, two_workers: list[Process]
) -> None:
    http = api_server
    # Submitted first, so the two workers start on two of its trials together.
    example = create(http, sweep_body(max_trials=6))  # tpe + hyperband, max_parallel 4
    grid = create(
        http,
        sweep_body(
            algorithm="grid",
            max_trials=None,
            max_parallel=2,
            pruner={"name": "none"},
            parameters={"model.dropout": {"values": [0.0, 0.2, 0.5]}, "optimizer.lr": {"values": [0.01, 0.1]}},
        ),
    )
    # One trial at a time, so the pruners' decisions are the same at every run.
    median = create(
        http,
        sweep_body(
            algorithm="random",
            max_trials=4,
            max_parallel=1,
            parameters=WIDE_LR,
            pruner={"name": "median", "startup_trials": 2},
        ),
    )
    asha = create(
        http,
        sweep_body(max_trials=4, max_parallel=1, parameters=WIDE_LR, pruner={"name": "asha"}),
    )

    boards_while_running = []

    def example_ended() -> bool:
        board = leaderboard(http, example)
        running = http.get(f"/v1/sweeps/{example}").json()["status"] == "running"
        if running:  # still running after the board was read: the board is one of a running sweep
            boards_while_running.append(board)
        return not running

    # For as long as the trials' epochs keep coming.
    wait_for(example_ended, 120, "the example sweep", interval=0.2, progress=lambda: boards_while_running[-1:])
    swept = {sweep_id: wait_for_sweep(http, sweep_id) for sweep_id in (example, grid, median, asha)}

    assert all(sweep["status"] == "succeeded" for sweep in swept.values()), swept
    # The example: its leaderboard filled while it ran, its trials ran side by side, it has a best trial.
    assert any(any(t["objective"] is not None for t in board) for board in boards_while_running)
    board = leaderboard(http, example)
    finished = [t for t in board if t["stop_reason"] != "pruned"]
    objectives = [t["objective"] for t in board]
    assert len(board) == swept[example]["trials"]["total"] == 6
    assert objectives == sorted(objectives)
    assert swept[example]["best_trial"]["objective"] == min(t["objective"] for t in finished)
    trial_jobs = http.get("/v1/jobs", params={"sweep_id": example}).json()["items"]
    assert len(trial_jobs) == 6 and overlap(trial_jobs)
    # The grid: exactly its six points, once each.
    points = [(t["params"]["model.dropout"], t["params"]["optimizer.lr"]) for t in leaderboard(http, grid)]
    assert sorted(points) == sorted(itertools.product([0.0, 0.2, 0.5], [0.01, 0.1]))
    assert swept[grid]["trials"]["succeeded"] == 6
    # Which of the grid's two parameters moved the objective: both shared out, summing to 1.
    importance = http.get(f"/v1/sweeps/{grid}/importance").json()
    assert importance["method"] == "fanova" and importance["trials"] == 6
    assert {item["parameter"] for item in importance["items"]} == {"model.dropout", "optimizer.lr"}
    assert sum(item["importance"] for item in importance["items"]) == pytest.approx(1.0)
    shares = [item["importance"] for item in importance["items"]]
    assert shares == sorted(shares, reverse=True)
    with Client(str(http.base_url), api_key) as client:  # the Python client reads the same
        assert client.sweep_importance(grid).model_dump(mode="json") == importance
        assert [t.number for t in client.sweep_trials(grid, sort="number").items] == list(range(6))
    # The pruners stopped trials early; a pruned trial succeeded and kept its epochs.
    for sweep_id in (median, asha):
        pruned = [t for t in leaderboard(http, sweep_id) if t["stop_reason"] == "pruned"]
        assert pruned and swept[sweep_id]["trials"]["pruned"] == len(pruned)
        few = http.get(f"/v1/sweeps/{sweep_id}/importance")  # 4 trials, some pruned: too few to tell
        assert few.status_code == 409 and "needs 5 trials that trained to their end" in few.json()["detail"]
        for trial in pruned:
            epochs = http.get(f"/v1/jobs/{trial['job_id']}/metrics").json()["items"]
            assert trial["status"] == "succeeded" and trial["epochs_completed"] < 9
            assert [e["epoch"] for e in epochs] == list(range(1, trial["epochs_completed"] + 1))


def test_a_cancelled_sweep_leaves_no_trial_running(api_server: httpx.Client, worker: Process) -> None:
    http = api_server
    endless = tiny_spec(dataset={"name": "digits"}, training={"epochs": 100_000, "batch_size": 32, "seed": 3})
    sweep_id = create(http, sweep_body(base=endless, max_trials=6, max_parallel=2, pruner={"name": "none"}))
    wait_for(lambda: any(t["epochs_completed"] >= 1 for t in leaderboard(http, sweep_id)), 60, "a trial to train")

    assert http.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 202
    wait_for(
        lambda: all(t["status"] not in ("queued", "running") for t in leaderboard(http, sweep_id)),
        30,
        "every trial to stop",
    )
    sweep = http.get(f"/v1/sweeps/{sweep_id}").json()
    trials = leaderboard(http, sweep_id)

    assert sweep["status"] == "cancelled"
    assert len(trials) == sweep["trials"]["total"] == sweep["trials"]["cancelled"] == 2
    assert {(t["status"], t["stop_reason"]) for t in trials} == {("cancelled", "cancelled")}
    assert max(t["epochs_completed"] for t in trials) >= 1  # the running one kept its epochs
