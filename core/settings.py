"""All configuration, from environment variables prefixed STEADYFIT_. Nothing else reads os.environ."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.states import Priority


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEADYFIT_", extra="ignore")

    data_dir: Path = Field(Path(".steadyfit"), description="Embedded mode's database, queue and artifacts.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite (WAL) in data_dir.")
    broker_url: str | None = Field(None, description="Celery broker URL; default: a file-system queue in data_dir.")
    queue_name: str = Field("training", description="The Celery queue jobs go through.")
    artifact_url: str | None = Field(
        None, description="s3://bucket/prefix: keep artifacts in an S3-compatible object store instead."
    )
    s3_endpoint_url: str | None = Field(None, description="The object store's address, for MinIO and the like.")
    artifact_dir: Path | None = Field(None, description="Where weights are stored; default: data_dir/artifacts.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API.")

    lease_seconds: float = Field(30.0, gt=0, description="A claimed job is another worker's after this silence.")
    heartbeat_seconds: float = Field(
        0.5, gt=0, description="How often a worker renews its lease and looks for a cancel request."
    )
    max_attempts: int = Field(3, ge=1, description="Starts of a job (after worker losses) before it fails.")
    reconcile_seconds: float = Field(
        10.0, gt=0, description="How often workers look for jobs whose broker message was lost."
    )
    db_retry_seconds: float = Field(
        300.0, gt=0, description="How long a worker keeps retrying a write while the database is down."
    )
    worker_concurrency: int = Field(1, ge=1, description="Jobs one worker process trains at once.")
    broker_timeout_seconds: float = Field(2.0, gt=0, description="How long a send or health check waits.")
    max_page_size: int = 200
    response_cache_mib: int = Field(
        8, ge=0, description="Memory per API process for response bodies kept by ETag (jobs, metrics pages); 0: none."
    )
    max_streams_per_owner: int = Field(
        60,
        gt=0,
        description="Most event streams one owner (without keys: one client address) may hold open on one API "
        "process; past it a 429.",
    )
    max_stream_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long an event stream stays open; then it ends with a `reconnect` event and the client "
        "resumes with Last-Event-ID.",
    )
    max_wall_seconds: float = Field(
        86_400.0,
        gt=0,
        description="Server-wide cap on a job's training time (a day by default); a job that reaches it stops "
        "with `timeout`, and a spec asking for more is a 422.",
    )
    analysis_seconds: float = Field(
        300.0,
        gt=0,
        description="The most time one analysis of a job (pruning, confusion, landscape, lr range) may take; "
        "one that would take longer ends `failed`, saying so, and the job stays `succeeded`.",
    )
    analysis_rows: int = Field(
        20_000,
        ge=10,
        description="The most rows of a split an analysis evaluates on (a seeded sample of larger splits), so its "
        "time and memory do not grow with the data set.",
    )
    job_log_lines: int = Field(
        2000,
        ge=0,
        description="Most log lines kept per job (GET /v1/jobs/{id}/logs); past it one line says how many were "
        "left out. A line is cut at 8 KiB.",
    )
    predict_cache_mib: int = Field(
        256,
        ge=0,
        description="Memory per API process for the ONNX models that answer predictions, least recently used "
        "dropped first (each counted as twice its file); 0: load the model for each request.",
    )
    max_predict_rows: int = Field(
        100_000, gt=0, description="Most rows one prediction request may hold, in JSON or a file (413 past it)."
    )
    auth: Literal["keys", "off"] = Field(
        "keys",
        description="`keys`: every /v1 request needs `Authorization: Bearer <key>`. `off`: no keys, every caller "
        "is the local administrator (what `steadyfit serve` does on a loopback address).",
    )
    portable_numerics: bool = Field(
        True,
        description="Train on the CPU with the AVX2 code paths of torch, MKL and oneDNN on every processor that "
        "has them, at a cost of a few per cent: the same spec, seed and threads give the same metrics bit for bit "
        "on like processors, and within the last bits of float32 on other AVX2 ones. `false`: the fastest "
        "kernels the processor has (AVX-512, AMX). No effect on CUDA.",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="Set by `steadyfit api` with several workers (no prefix: prometheus-client reads it too): "
        "/metrics adds up the metrics every API process writes there.",
    )
    key_cache_seconds: float = Field(
        5.0, ge=0, description="How long an API process trusts a key it has looked up; a revocation waits this long."
    )
    max_body_bytes: int = Field(
        2**20, gt=0, description="Largest request body on any route but a data set upload, in bytes (413 past it)."
    )
    allowed_hosts: list[str] | None = Field(
        None,
        description="`Host` header values the API answers (`name` or `name:port`; `*` for any), others a 400. "
        "Unset: any while keys are on; without keys only 127.0.0.1, localhost and [::1] at the port it listens on.",
    )
    rate_limit_per_second: float = Field(
        500.0,
        ge=0,
        description="Requests per second that one API key, and one client address, may make to /v1 on average "
        "(429 past it); 0: no limit.",
    )
    rate_limit_burst: int = Field(
        5000, gt=0, description="Requests one API key, or one client address, may make at once before the rate applies."
    )
    metrics_token: SecretStr | None = Field(
        None, description="A bearer token that may read /metrics while keys are on (an admin's key may too)."
    )
    metrics_refresh_seconds: float = Field(
        10.0, ge=0, description="How long /metrics reuses its reading of the jobs table before reading it again."
    )
    # Limits; each can be overridden per owner (`steadyfit limits set`). Job counts are per owner.
    max_upload_bytes: int = Field(100 * 2**20, gt=0, description="Largest data set upload, in bytes.")
    max_upload_rows: int = Field(1_000_000, gt=0, description="Most rows in an uploaded data set.")
    max_storage_bytes: int = Field(
        10 * 2**30, gt=0, description="Bytes of stored data sets one owner may keep; past it an upload is a 413."
    )
    # Server-wide only: they bound the memory an upload takes in the API process, which every owner shares.
    max_upload_columns: int = Field(1000, gt=0, description="Most columns in an uploaded table (422 past it).")
    max_categories: int = Field(
        1000,
        gt=0,
        description="Most distinct values of one text column of an upload, each a one-hot feature, and most classes "
        "of its target (422 past it).",
    )
    max_encoded_bytes: int = Field(
        256 * 2**20,
        gt=0,
        description="Largest upload once encoded, rows x features x 4 bytes (422 past it): what the API allocates "
        "and a worker loads.",
    )
    max_image_pixels: int = Field(
        4096 * 4096,
        gt=0,
        description="Largest image in an uploaded zip, width x height as stored, checked before it is decoded (413).",
    )
    max_queued_jobs: int = Field(
        1000, gt=0, description="Most jobs one owner may have waiting; past it a submission is a 429."
    )
    max_running_jobs: int = Field(
        100, gt=0, description="Most jobs one owner may have training; while it is reached a submission is a 429."
    )
    max_model_parameters: int = Field(
        50_000_000, gt=0, description="Largest model a spec may describe, in trainable parameters (422 past it)."
    )
    max_epochs: int = Field(
        100_000, gt=0, description="Most epochs a spec may ask for (422 past it); the spec's own bound by default."
    )
    max_priority: Priority = Field(
        Priority.NORMAL,
        description="The highest `priority` an owner's jobs may ask for (422 past it), unless set for the owner "
        "(`steadyfit limits set OWNER --max-priority high`).",
    )
    # Cost bounds (core/jobs/cost.py), server-wide; with max_wall_seconds above.
    max_data_bytes: int = Field(
        2 * 2**30, gt=0, description="Largest data set a job may generate or load, as float64 rows by features (422)."
    )
    max_activation_bytes: int = Field(
        2**30, gt=0, description="Largest activation of one training step: batch size by widest layer by 4 bytes (422)."
    )
    retry_after_seconds: int = Field(30, gt=0, description="The Retry-After of a 429 for a full job quota.")
    idempotency_key_hours: float = Field(
        24.0, gt=0, description="How long an Idempotency-Key is remembered (the same key later is a new request)."
    )

    # Webhooks (core/webhooks/, workers/webhooks.py).
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks target addresses on loopback, private, link-local, multicast or reserved "
        "ranges (refused by default, at creation and at each delivery, so that a URL cannot reach the servers "
        "beside steadyfit). For an administrator whose receivers are on a private network.",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts of one delivery before it is `failed`; each waits twice the previous one."
    )
    webhook_retry_seconds: float = Field(
        10.0, gt=0, description="The wait before a delivery's second attempt; it doubles at each attempt after."
    )
    webhook_max_retry_seconds: float = Field(3600.0, gt=0, description="The longest wait between two attempts.")
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a delivery waits to connect, and then for the receiver's answer."
    )
    webhook_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A delivery being sent is another worker's to retry after this long (its worker was lost); "
        "keep it above twice `webhook_timeout_seconds`, or a slow receiver may be sent the event twice.",
    )
    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often a worker looks for deliveries due.")
    webhook_threshold_refresh_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a training job reads its owner's `metric.threshold` webhooks again (at most once "
        "per epoch): a webhook created while a job runs is checked against its epochs from then on.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'steadyfit.db').resolve()}"

    @cached_property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://localhost/"  # with no host, kombu warns at every connection

    @property
    def broker_is_filesystem(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def queue_dir(self) -> Path:
        return (self.data_dir / "queue").resolve()

    @cached_property
    def resolved_artifact_dir(self) -> Path:
        return (self.artifact_dir or self.data_dir / "artifacts").resolve()
