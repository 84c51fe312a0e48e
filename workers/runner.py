"""One job from claim to terminal status: claim → train (recording each epoch) → record the result."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch

from core.analyses import repository as analyses_repository
from core.artifacts import ArtifactStore, artifact_store, checkpoint_key, model_weights_key, weights_key
from core.datasets import repository as datasets_repository
from core.datasets import storage
from core.db.base import utcnow
from core.db.changes import ChangePublisher
from core.db.engine import Database
from core.jobs import repository, scheduler
from core.models import repository as models_repository
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.job import JobSpec, Task
from core.states import AnalysisKind, AnalysisStatus, JobStatus, StopReason
from workers import metrics
from workers.analyses import run as analyses
from workers.environment import described
from workers.heartbeat import LEASE_LOST, SHUTDOWN, Heartbeat
from workers.job_logs import JobLogs
from workers.retry import with_retries
from workers.thresholds import ThresholdWatch
from workers.training.checkpoint import (
    Checkpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    weights_from_bytes,
    weights_to_bytes,
)
from workers.training.data import PreparedData, load_dataset, prepare_arrays
from workers.training.engine import EpochEnd, StopTraining, TrainResult, device_name, pick_device, train
from workers.trials import TrialPruning, schedule_next_trials

log = logging.getLogger(__name__)
EPOCH_LOG = ("train_loss", "val_loss", "val_accuracy", "val_r2")  # what an epoch's log line shows


def finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN or infinity: a diverged value is stored as null."""
    return {key: (value if math.isfinite(value) else None) for key, value in metrics.items()}


def resolved_spec(spec: JobSpec, stored: dict[str, Any], task: Task, data_task: Task) -> JobSpec:
    """The spec to train, resolved for its task once:

    1. Admission stores the spec resolved for the task the row records: checked against it, the default
       loss filled in, every default written out. Such a row, on data of that task, trains as stored.
    2. Any other row (written past admission, or whose data is of another task) is resolved here against
       the data's own task, which fails naming the first field that does not fit.
    """
    if spec.loss is not None and task == data_task and spec.model_dump(mode="json") == stored:
        return spec
    return spec.with_task(data_task)


class NotTheOwners(PermissionError):
    """A job's spec names another owner's data set or job: the job fails without reading it."""


class JobRunner:
    def __init__(
        self, database: Database, artifacts: ArtifactStore, queue: TaskQueue, settings: Settings, worker_id: str
    ) -> None:
        self.database, self.artifacts, self.queue = database, artifacts, queue
        self.settings, self.worker_id = settings, worker_id
        self.changes = ChangePublisher(settings)
        self.logs: JobLogs | None = None  # the log lines of the job this runner has now

    @classmethod
    def from_settings(cls, worker_id: str, settings: Settings | None = None) -> JobRunner:
        settings = settings or Settings()
        return cls(
            Database(settings.resolved_database_url),
            artifact_store(settings),
            TaskQueue(settings),
            settings,
            worker_id,
        )

    def run(self, sent_for: str) -> None:
        """Train the job the scheduler gives this worker (core/jobs/scheduler.py). A message only says there is
        work: `sent_for`, the job it was sent for, may run on another worker, or after a job that goes first."""
        sweep_id = self._run(sent_for)
        if sweep_id is not None:
            # The trial has ended (or gone back to the queue): its sweep may start the next ones, or finish.
            schedule_next_trials(self.database, self.queue, self.settings, sweep_id)

    def _run(self, sent_for: str) -> str | None:
        """Claim the next job, train it and record it. Returns the sweep it is a trial of, if any."""
        with self.database.session() as session:
            job = scheduler.claim_next(session, self.worker_id, self.settings.lease_seconds, self.settings.max_attempts)
            if job is None:
                log.info("no job to claim for the message of job %s (all taken, finished or cancelled)", sent_for)
                return None
            job_id, raw_spec, cancel_requested, sweep_id = job.id, job.spec, job.cancel_requested, job.sweep_id
            job_owner, recorded_task = job.owner, job.task
        log.info("job %s claimed by %s", job_id, self.worker_id)
        self.changes.job_changed(job_id)
        if cancel_requested:
            self._finish(job_id, JobStatus.CANCELLED, stop_reason=StopReason.CANCELLED)
            return sweep_id
        heartbeat = Heartbeat(
            self.database,
            job_id,
            self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            interval=self.settings.heartbeat_seconds,
        )
        self.logs = JobLogs(self.database, job_id, self.settings.job_log_lines)
        try:
            with self.logs:
                return self._train_and_record(job_id, raw_spec, recorded_task, heartbeat, sweep_id, job_owner)
        finally:
            self.logs = None

    def _train_and_record(
        self,
        job_id: str,
        raw_spec: dict[str, Any],
        recorded_task: Task,
        heartbeat: Heartbeat,
        sweep_id: str | None,
        job_owner: str,
    ) -> str | None:
        with heartbeat:
            try:
                spec = JobSpec.model_validate(raw_spec)
                asked = spec.training.max_wall_seconds
                heartbeat.stop_after(min(asked or math.inf, self.settings.max_wall_seconds))
                data = self._load_data(spec, job_owner)
                resolved = resolved_spec(spec, raw_spec, recorded_task, data.task)
                result = self._train(job_id, resolved, data, heartbeat, sweep_id, job_owner)
                succeeded = self._record_result(job_id, spec, data, result)
            except Exception as exc:
                log.exception("job %s failed", job_id)
                self._finish(job_id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
                return sweep_id
        if succeeded:
            # After the job's status: clients see it succeeded at once; an analysis that fails is its own row.
            kinds = analyses.after_success(resolved, data.task)
            with self.database.session() as session:
                for kind in kinds:  # all queued at once, so that each is there to read while the first runs
                    analyses_repository.request(session, job_id, kind, {})
            device = pick_device()
            for kind in kinds:
                analyses.analyze(
                    self.database, self.artifacts, self.settings, job_id, kind, resolved, data, result.weights, device
                )
        return sweep_id

    def analyze(self, job_id: str, kind: AnalysisKind) -> None:
        """Run a requested analysis of a job (POST /v1/jobs/{id}/analyses), loading its spec, data and weights."""
        with self.database.session() as session:
            job = repository.get(session, job_id)
            if job is None:
                return
            raw_spec, status, task, owner = job.spec, job.status, job.task, job.owner
        try:
            spec = JobSpec.model_validate(raw_spec)
            data = self._load_data(spec, owner)
            resolved = resolved_spec(spec, raw_spec, task, data.task)
            weights = None
            if kind != AnalysisKind.LR_RANGE:  # the others study the kept weights
                if status != JobStatus.SUCCEEDED:
                    raise LookupError(f"job {job_id} is {status}: only a succeeded job has kept weights")
                weights = self._stored_weights(weights_key(job_id), f"job {job_id} has no stored weights")
        except Exception as exc:
            with self.database.session() as session:
                analyses_repository.record(session, job_id, kind, AnalysisStatus.FAILED, error=str(exc))
            return
        analyses.analyze(
            self.database, self.artifacts, self.settings, job_id, kind, resolved, data, weights, pick_device()
        )

    def _train(
        self,
        job_id: str,
        spec: JobSpec,
        data: PreparedData,
        heartbeat: Heartbeat,
        sweep_id: str | None,
        job_owner: str,
    ) -> TrainResult:
        device = pick_device()
        with self.database.session() as session:
            job = repository.get(session, job_id)
            if job is not None:
                job.device = str(device)
                job.data_hash = data.content_hash()
                job.environment = described(device_name(device))
                job.updated_at = utcnow()  # both are in the job's JSON: its ETag must change with them

        resume = self._last_checkpoint(job_id)
        if resume is not None:
            log.info("job %s resumes after epoch %s", job_id, resume.meta.get("epoch"))

        pruning = None
        if sweep_id is not None:
            pruning = TrialPruning.of_trial(
                self.database,
                job_id,
                self.worker_id,
                sweep_id,
                epochs=spec.training.epochs,
                give_up_after=self.settings.db_retry_seconds,
            )

        thresholds = ThresholdWatch(
            self.database, job_id, job_owner, refresh_seconds=self.settings.webhook_threshold_refresh_seconds
        )

        def on_epoch_end(end: EpochEnd) -> None:
            self._record_epoch(job_id, end, thresholds)
            # After the epoch's row: a crash in between repeats this epoch on resume, which the row's
            # primary key absorbs; the other order could skip an epoch.
            self.artifacts.put(checkpoint_key(job_id), checkpoint_to_bytes(end.checkpoint()))
            if pruning is not None:
                pruning.after_epoch(end.epoch)  # a pruned trial stops here, keeping this epoch

        return train(
            spec,
            data,
            on_epoch_end=on_epoch_end,
            should_stop=heartbeat.stop_reason,
            init_weights=self._init_weights(spec, job_owner),
            resume=resume,
            device=device,
        )

    def _last_checkpoint(self, job_id: str) -> Checkpoint | None:
        data = self.artifacts.get(checkpoint_key(job_id))
        return None if data is None else checkpoint_from_bytes(data)

    def _init_weights(self, spec: JobSpec, job_owner: str) -> dict[str, torch.Tensor] | None:
        """The weights `init_from` names, for a warm start: one of the same owner's jobs or models (admission
        checked it; this is the second line, should a row ever say otherwise)."""
        source = spec.init_from
        if source is None:
            return None
        with self.database.session() as session:
            if source.model_id is not None:
                what, key = f"model {source.model_id}", model_weights_key(source.model_id)
                kind = "models"
                model = models_repository.get(session, source.model_id)
                owner = None if model is None else model.owner
            else:
                job_id = str(source.job_id)
                what, key, kind = f"job {job_id}", weights_key(job_id), "jobs"
                job = repository.get(session, job_id)
                owner = None if job is None else job.owner
        if owner != job_owner:
            raise NotTheOwners(f"{what} is not one of {job_owner}'s {kind} to start from")
        return self._stored_weights(key, f"{what} has no stored weights to start from")

    def _stored_weights(self, key: str, missing: str) -> dict[str, torch.Tensor]:
        """The weights stored under `key`; a LookupError that says `missing` when there are none."""
        data = self.artifacts.get(key)
        if data is None:
            raise LookupError(missing)
        weights, _card = weights_from_bytes(data)
        return weights

    def _load_data(self, spec: JobSpec, job_owner: str) -> PreparedData:
        """The job's data; an uploaded data set must be its owner's (as admission checked)."""
        if spec.dataset.id is None:
            return load_dataset(spec.dataset, spec.training.seed)
        with self.database.session() as session:
            dataset = datasets_repository.get(session, spec.dataset.id)
            if dataset is None:
                raise LookupError(f"data set {spec.dataset.id} no longer exists")
            if dataset.owner != job_owner:
                raise NotTheOwners(f"data set {spec.dataset.id} is not one of {job_owner}'s data sets")
            task, categorical, imputation = dataset.task, dataset.categorical_columns, dataset.imputation
            image_shape = tuple(dataset.input_shape) if dataset.input_shape else None
        arrays = storage.load_arrays(self.artifacts, spec.dataset.id)
        prepared = prepare_arrays(
            arrays.features,
            arrays.target,
            task,
            spec.dataset,
            spec.training.seed,
            feature_names=arrays.feature_names,
            class_names=arrays.class_names,
            image_shape=image_shape,
        )
        return dataclasses.replace(prepared, categorical_columns=list(categorical), imputation=imputation)

    def _record_epoch(self, job_id: str, end: EpochEnd, thresholds: ThresholdWatch) -> None:
        values = finite_or_none(end.metrics)

        def write() -> bool:
            with self.database.single_statement_session() as session:
                best_epoch, best_values = (end.epoch, values) if end.is_best else (None, None)
                return repository.record_epoch(
                    session, job_id, self.worker_id, end.epoch, values, best_epoch, best_values
                )

        patience = self.settings.db_retry_seconds
        if not with_retries(write, what=f"job {job_id} epoch {end.epoch}", give_up_after=patience):
            raise StopTraining(LEASE_LOST)
        # Its own transaction, after the epoch's: see core/webhooks/thresholds.py for what a crash between costs.
        thresholds.after_epoch(end.epoch, values)
        shown = ", ".join(f"{key} {end.metrics[key]:.4g}" for key in EPOCH_LOG if key in end.metrics)
        log.info("epoch %d: %s%s", end.epoch, shown, " (best so far)" if end.is_best else "")
        if self.logs is not None:
            self.logs.flush()
        self.changes.job_changed(job_id)  # after the log lines, so an event stream reads them with the epoch
        metrics.EPOCHS.inc()
        metrics.EPOCH_SECONDS.observe(end.metrics["epoch_seconds"])

    def _record_result(self, job_id: str, spec: JobSpec, data: PreparedData, result: TrainResult) -> bool:
        """Store the weights and the terminal status; True when the job succeeded."""
        if result.stop_reason == LEASE_LOST:
            log.warning("job %s: lease lost; leaving it to the worker that holds it", job_id)
            return False
        if result.stop_reason == SHUTDOWN:
            with self.database.session() as session:
                released = repository.release(session, job_id, self.worker_id)
            self.changes.job_changed(job_id)
            if released:
                log.info("job %s handed back to the queue after epoch %d", job_id, result.epochs_completed)
                self.queue.send_train(job_id)
            return False
        self.artifacts.put(weights_key(job_id), weights_to_bytes(result.weights, data.model_card(spec)))
        cancelled = result.stop_reason == StopReason.CANCELLED
        status = JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED
        log.info("job %s %s: %s after %d epochs", job_id, status, result.stop_reason, result.epochs_completed)
        self._finish(
            job_id,
            status,
            stop_reason=StopReason(result.stop_reason),
            test_metrics=finite_or_none(result.test_metrics),
            epochs_completed=result.epochs_completed,
            best_epoch=result.best_epoch,
            best_metrics=finite_or_none(result.best_metrics) if result.best_metrics else None,
        )
        return status == JobStatus.SUCCEEDED

    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> None:
        if self.logs is not None:
            self.logs.flush()  # a failure's traceback is in the log before the status says `failed`

        def write() -> bool:
            with self.database.session() as session:
                return repository.finish(session, job_id, self.worker_id, status, **values)

        if not with_retries(write, what=f"job {job_id} {status}", give_up_after=self.settings.db_retry_seconds):
            log.warning("job %s: could not record %s; the lease was no longer ours", job_id, status)
        self.changes.job_changed(job_id)
        metrics.JOBS_ENDED.labels(status).inc()
