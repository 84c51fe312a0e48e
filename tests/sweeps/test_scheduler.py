"""The scheduler on real PostgreSQL: trials are created up to the limits, never twice, whoever schedules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core.db.base import utcnow
from core.db.engine import Database
from core.db.models import Job
from core.jobs import repository as jobs_repository
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.sweep import SweepCreate
from core.sweeps import repository
from core.sweeps.schedule import schedule
from core.tenants.principal import Principal
from service.jobs import service as jobs_service
from service.sweeps import service as sweeps
from tests.fixtures import sweep_body
from workers.reconciler import Reconciler

ALICE = Principal(owner="alice")


class Scheduler:
    """What a scheduling process holds: its own connections and its own producer."""

    def __init__(self, settings: Settings) -> None:
        self.database, self.queue = Database(settings.resolved_database_url), TaskQueue(settings)
        self.settings = settings

    def schedule(self, sweep_id: str) -> list[str]:
        with self.database.session() as session:
            return [job.id for job in schedule(session, self.queue, self.settings, sweep_id)]

    def close(self) -> None:
        self.queue.close()
        self.database.dispose()


@pytest.fixture
def schedulers(settings: Settings) -> Iterator[list[Scheduler]]:
    started = [Scheduler(settings) for _ in range(4)]
    yield started
    for scheduler in started:
        scheduler.close()


def create(scheduler: Scheduler, **changes: Any) -> str:
    with scheduler.database.session() as session:
        body = SweepCreate.model_validate(sweep_body(**changes))
        return sweeps.create(session, scheduler.queue, body, scheduler.settings, ALICE).id


def trials(scheduler: Scheduler, sweep_id: str) -> list[Job]:
    with scheduler.database.session() as session:
        return list(repository.trials(session, sweep_id))


def end_trial(scheduler: Scheduler, job_id: str, val_loss: float) -> None:
    """What a worker records when a trial ends."""
    with scheduler.database.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status="succeeded", stop_reason="max_epochs", best_metrics={"val_loss": val_loss}, finished_at=utcnow()
            )
        )


def all_at_once(schedulers: list[Scheduler], sweep_id: str) -> list[str]:
    """Every scheduler schedules the sweep at the same moment; returns the ids created, by all of them."""
    start, created = threading.Barrier(len(schedulers)), []

    def run(scheduler: Scheduler) -> None:
        start.wait()
        created.extend(scheduler.schedule(sweep_id))

    threads = [threading.Thread(target=run, args=(scheduler,)) for scheduler in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return created


def test_racing_schedulers_create_each_trial_once_and_finish_the_sweep(schedulers: list[Scheduler]) -> None:
    first = schedulers[0]
    sweep_id = create(first, max_parallel=3, max_trials=7)
    assert [t.trial_number for t in trials(first, sweep_id)] == [0, 1, 2]

    while queued := [t for t in trials(first, sweep_id) if t.status == "queued"]:
        before = len(trials(first, sweep_id))
        for trial in queued[:2]:  # two trials end; four schedulers hear of it at once
            end_trial(first, trial.id, val_loss=1.0 / (1 + (trial.trial_number or 0)))
        created = all_at_once(schedulers, sweep_id)
        assert len(set(created)) == len(created) == min(2, 7 - before)

    ended = trials(first, sweep_id)
    with first.database.session() as session:
        sweep = sweeps.read(session, sweep_id, ALICE)
    assert [t.trial_number for t in ended] == list(range(7))
    assert sweep.status == "succeeded" and sweep.trials.succeeded == 7
    assert sweep.best_trial is not None and sweep.best_trial.number == 6  # the lowest val_loss


def test_a_restarted_scheduler_creates_nothing_while_the_trials_run(
    schedulers: list[Scheduler], settings: Settings
) -> None:
    sweep_id = create(schedulers[0], max_parallel=2)
    restarted = Scheduler(settings)  # a new process: nothing in memory, only the database
    try:
        assert restarted.schedule(sweep_id) == []
        assert all_at_once(schedulers, sweep_id) == []
    finally:
        restarted.close()
    assert len(trials(schedulers[0], sweep_id)) == 2


def test_the_database_refuses_a_second_trial_with_the_same_number(schedulers: list[Scheduler]) -> None:
    scheduler = schedulers[0]
    sweep_id = create(scheduler, max_parallel=1)
    duplicate = Job(id="duplicate", status="queued", task="classification", spec={}, sweep_id=sweep_id, trial_number=0)
    with pytest.raises(IntegrityError), scheduler.database.session() as session:
        jobs_repository.add(session, duplicate)


def test_parameters_that_make_an_invalid_spec_become_a_failed_trial_and_the_sweep_goes_on(
    schedulers: list[Scheduler],
) -> None:
    splits = {"values": [0.2, 0.65]}  # each fine beside the base's 0.2; together 1.3 of the rows
    scheduler = schedulers[0]
    sweep_id = create(
        scheduler,
        algorithm="random",
        parameters={"dataset.validation_split": splits, "dataset.test_split": splits},
        max_trials=8,
        max_parallel=3,
        seed=5,
    )
    made = trials(scheduler, sweep_id)
    failed = [t for t in made if t.status == "failed"]

    assert [t.trial_number for t in failed] == [0, 2, 4]  # what seed 5 draws
    assert sum(t.status == "queued" for t in made) == 3
    for trial in failed:
        assert trial.trial_params == {"dataset.validation_split": 0.65, "dataset.test_split": 0.65}
        assert trial.error is not None and trial.error.startswith("these parameters do not make a valid spec")
        with scheduler.database.session() as session:
            job = jobs_repository.get(session, trial.id)
            assert job is not None and job.spec["dataset"]["validation_split"] == 0.2  # the base spec: valid


def test_a_cancelled_sweep_gets_no_new_trial(schedulers: list[Scheduler]) -> None:
    scheduler = schedulers[0]
    sweep_id = create(scheduler, max_parallel=2)
    with scheduler.database.session() as session:
        sweeps.cancel(session, sweep_id, ALICE)

    assert all_at_once(schedulers, sweep_id) == []
    assert [t.status for t in trials(scheduler, sweep_id)] == ["cancelled", "cancelled"]


def test_the_reconciler_replaces_a_trial_that_ended_with_no_worker(
    schedulers: list[Scheduler], settings: Settings
) -> None:
    scheduler = schedulers[0]
    sweep_id = create(scheduler, max_parallel=1, max_trials=2)
    with scheduler.database.session() as session:
        jobs_service.cancel(
            session, trials(scheduler, sweep_id)[0].id, ALICE
        )  # cancelled while queued: no worker saw it

    Reconciler(scheduler.database, scheduler.queue, settings).run_once()

    assert [(t.trial_number, t.status) for t in trials(scheduler, sweep_id)] == [(0, "cancelled"), (1, "queued")]
