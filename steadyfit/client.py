"""A typed, synchronous Python client for the steadyfit API.

from steadyfit import Client
client = Client()                      # STEADYFIT_URL / STEADYFIT_API_KEY, or arguments
job = client.submit(spec_dict)
for event in client.events(job.id):    # live epochs and status changes (logs=True: log lines too)
    ...
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.artifacts import ONNX_FILE
from core.states import ACTIVE, AnalysisStatus, JobStatus
from core.webhooks.thresholds import parse as parse_threshold
from service.analyses.schemas import AnalysisRead
from service.datasets.schemas import DatasetList, DatasetRead
from service.jobs.diagnosis import DiagnosisRead
from service.jobs.schemas import ArtifactList, JobDetail, JobList, JobLogPage, JobRead, MetricsPage
from service.models.schemas import ModelList, ModelRead
from service.paths.schemas import PathRead
from service.predictions.schemas import PredictionRead
from service.projects.schemas import ProjectList
from service.queue.schemas import QueueRead
from service.sweeps.schemas import ImportanceRead, SweepRead, TrialList
from service.webhooks.schemas import DeliveryList, WebhookCreated, WebhookList

T = TypeVar("T")
POLL_SECONDS = 0.5
ANALYSIS_ENDED = (AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED)


class ClientSettings(BaseSettings):
    """Where the client finds the server: STEADYFIT_URL and STEADYFIT_API_KEY."""

    model_config = SettingsConfigDict(env_prefix="STEADYFIT_", extra="ignore")

    url: str = Field("http://127.0.0.1:8000", description="The steadyfit API's base URL.")
    api_key: str | None = Field(None, description="Sent as `Authorization: Bearer <key>`.")


class ApiError(Exception):
    """An error answer from the API, with its problem details."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or problem}")


@dataclass(frozen=True)
class Event:
    """One server-sent event: `epoch` (data = that epoch's metrics) or `status` (data = the job)."""

    event: str
    data: dict[str, Any]
    id: str | None


class Client:
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0) -> None:
        settings = ClientSettings()
        headers = {}
        key = api_key or settings.api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.http = httpx.Client(base_url=(url or settings.url).rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.is_error:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text}
            raise ApiError(response.status_code, problem)
        return response

    def me(self) -> dict[str, Any]:
        """Who the key acts for (`owner`, `admin`) and the limits that apply to it."""
        result: dict[str, Any] = self._request("GET", "/v1/me").json()
        return result

    # jobs
    def submit(self, spec: dict[str, Any], project: str | None = None, tags: dict[str, str] | None = None) -> JobRead:
        """Submit a job; `project` and `tags`, when given, take the place of any the spec's body has."""
        body = {**spec, **({"project": project} if project else {}), **({"tags": tags} if tags is not None else {})}
        return JobRead.model_validate(self._request("POST", "/v1/jobs", json=body).json())

    def job(self, job_id: str) -> JobDetail:
        """The job; while it is queued, with its `queue_position` and `estimated_start`."""
        return JobDetail.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def queue(self) -> QueueRead:
        """Queued and running jobs per owner (an admin: every owner's; anyone else: its own) and in all."""
        return QueueRead.model_validate(self._request("GET", "/v1/queue").json())

    def jobs(
        self,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
        id_prefix: str | None = None,
        *,
        project: str | None = None,
        tags: dict[str, str] | None = None,
        where: Sequence[str] = (),
        order_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> JobList:
        """A page of jobs: those with every one of `tags` and every `where` expression true (e.g.
        `model.dropout>=0.2`), in `order_by` (e.g. `best_metrics.val_loss`, `-created_at`, the default)."""
        given = {
            "status": status,
            "cursor": cursor,
            "id_prefix": id_prefix,
            "project": project,
            "order_by": order_by,
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
        }
        params: dict[str, Any] = {"limit": limit, **{name: value for name, value in given.items() if value}}
        if tags:
            params["tag"] = [f"{key}:{value}" for key, value in tags.items()]
        if where:
            params["where"] = list(where)
        return JobList.model_validate(self._request("GET", "/v1/jobs", params=params).json())

    def projects(self) -> ProjectList:
        """Your projects, each with its number of jobs."""
        return ProjectList.model_validate(self._request("GET", "/v1/projects").json())

    def metrics(self, job_id: str, after_epoch: int = 0, max_points: int | None = None) -> MetricsPage:
        params: dict[str, Any] = {"after_epoch": after_epoch}
        if max_points:
            params["max_points"] = max_points
        return MetricsPage.model_validate(self._request("GET", f"/v1/jobs/{job_id}/metrics", params=params).json())

    def metrics_csv(self, job_id: str) -> str:
        return self._request("GET", f"/v1/jobs/{job_id}/metrics", params={"format": "csv"}).text

    def analyze(self, job_id: str, kind: str, options: dict[str, Any] | None = None) -> AnalysisRead:
        """Ask for an analysis of the job (`landscape`, `lr_range`, `onnx`, or `pruning` / `confusion` again)."""
        body = {"kind": kind, "options": options or {}}
        return AnalysisRead.model_validate(self._request("POST", f"/v1/jobs/{job_id}/analyses", json=body).json())

    def analysis(self, job_id: str, kind: str, wait: float = 0.0) -> AnalysisRead:
        """The job's analysis of this kind; with `wait`, polled until it has succeeded or failed (at most that
        many seconds)."""

        def read() -> AnalysisRead | ApiError:
            try:
                return AnalysisRead.model_validate(self._request("GET", f"/v1/jobs/{job_id}/{kind}").json())
            except ApiError as exc:  # a job that has just ended may not have queued its analyses yet
                if exc.status != 404:
                    raise
                return exc

        found = _poll(read, lambda found: isinstance(found, AnalysisRead) and found.status in ANALYSIS_ENDED, wait)
        if isinstance(found, ApiError):
            raise found
        return found

    def wait(self, job_id: str, timeout: float = 3600.0) -> JobRead:
        """The job once it has ended (or after `timeout` seconds)."""
        return _poll(lambda: self.job(job_id), lambda job: job.status not in ACTIVE, timeout)

    def diagnosis(self, job_id: str) -> DiagnosisRead:
        return DiagnosisRead.model_validate(self._request("GET", f"/v1/jobs/{job_id}/diagnosis").json())

    def submit_path(self, body: dict[str, Any]) -> PathRead:
        return PathRead.model_validate(self._request("POST", "/v1/paths", json=body).json())

    def path(self, path_id: str) -> PathRead:
        return PathRead.model_validate(self._request("GET", f"/v1/paths/{path_id}").json())

    def path_csv(self, path_id: str) -> str:
        return self._request("GET", f"/v1/paths/{path_id}", params={"format": "csv"}).text

    def submit_sweep(self, body: dict[str, Any]) -> SweepRead:
        return SweepRead.model_validate(self._request("POST", "/v1/sweeps", json=body).json())

    def sweep(self, sweep_id: str) -> SweepRead:
        return SweepRead.model_validate(self._request("GET", f"/v1/sweeps/{sweep_id}").json())

    def sweep_trials(self, sweep_id: str, sort: str = "objective") -> TrialList:
        """The leaderboard (`sort="objective"`, best first) or the trials in order (`"number"`)."""
        response = self._request("GET", f"/v1/sweeps/{sweep_id}/trials", params={"sort": sort})
        return TrialList.model_validate(response.json())

    def sweep_importance(self, sweep_id: str) -> ImportanceRead:
        """Each parameter's share of the objective's variance (fANOVA), once 5 trials have completed."""
        return ImportanceRead.model_validate(self._request("GET", f"/v1/sweeps/{sweep_id}/importance").json())

    def chart(self, job_id: str, name: str, format: str = "json") -> bytes:
        """Chart `name` of the job: its Vega-Lite JSON, or `svg` or `png` drawn by the server."""
        return self._request("GET", f"/v1/jobs/{job_id}/charts/{name}", params={"format": format}).content

    def logs(self, job_id: str, after: int = 0, limit: int = 500) -> JobLogPage:
        """The job's log lines numbered after `after`, and its status."""
        params = {"after": after, "limit": limit}
        return JobLogPage.model_validate(self._request("GET", f"/v1/jobs/{job_id}/logs", params=params).json())

    def rerun(self, job_id: str, changes: dict[str, Any] | None = None) -> JobRead:
        """Submit the job's spec again as a new job, changed by `changes` (a JSON merge patch) if given."""
        response = self._request("POST", f"/v1/jobs/{job_id}/rerun", json=changes)
        return JobRead.model_validate(response.json())

    def cancel(self, job_id: str) -> JobRead:
        return JobRead.model_validate(self._request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def artifacts(self, job_id: str) -> ArtifactList:
        return ArtifactList.model_validate(self._request("GET", f"/v1/jobs/{job_id}/artifacts").json())

    def download(self, job_id: str, name: str, directory: Path) -> Path:
        path = directory / f"{job_id}-{name}"
        path.write_bytes(self._request("GET", f"/v1/jobs/{job_id}/artifacts/{name}").content)
        return path

    def events(self, job_id: str, after_epoch: int = 0, logs: bool = False) -> Iterator[Event]:
        """The job's live events until it ends (`epoch` and `status`, and `log` lines with `logs`); reconnects
        after a dropped connection or at the stream's lifetime, losing nothing and repeating nothing."""
        last_epoch, last_log = after_epoch, 0 if logs else None
        while True:
            finished = False
            try:
                for event in self._stream(job_id, last_epoch, last_log):
                    if event.event == "reconnect":  # the stream's lifetime is up: come back when told, resume
                        time.sleep(event.data["retry_ms"] / 1000)
                        continue
                    if event.event == "epoch":
                        last_epoch = int(event.data["epoch"])
                    if event.event == "log":
                        last_log = int(event.data["seq"])
                    finished = event.event == "status" and event.data["status"] in ("succeeded", "failed", "cancelled")
                    yield event
            except httpx.TransportError:
                time.sleep(1.0)  # the server is restarting or the network dropped: resume where we were
                continue
            if finished:
                return

    def _stream(self, job_id: str, after_epoch: int, after_log: int | None) -> Iterator[Event]:
        timeout = httpx.Timeout(self.http.timeout.connect, read=None)
        params = {} if after_log is None else {"logs_after": after_log}
        headers = {"Last-Event-ID": str(after_epoch)}
        with self.http.stream(
            "GET", f"/v1/jobs/{job_id}/events", params=params, headers=headers, timeout=timeout
        ) as response:
            if response.is_error:
                response.read()
                raise ApiError(response.status_code, response.json())
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                    continue
                if "data" in fields:
                    yield Event(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id"))
                fields = {}

    # predictions
    def predict(
        self, job_id: str, rows: list[Any] | None = None, *, records: list[dict[str, Any]] | None = None
    ) -> PredictionRead:
        """The job's predictions for raw `rows` (features in training order, or image arrays) or `records`
        ({column: value}); the server applies the job's preprocessing."""
        body = {"rows": rows} if records is None else {"records": records}
        return PredictionRead.model_validate(self._request("POST", f"/v1/jobs/{job_id}/predict", json=body).json())

    def predict_file(self, job_id: str, path: Path) -> PredictionRead:
        """The job's predictions for the rows of a CSV, Parquet or .npz file."""
        with path.open("rb") as file:
            response = self._request("POST", f"/v1/jobs/{job_id}/predict/file", files={"file": (path.name, file)})
        return PredictionRead.model_validate(response.json())

    def load_model(self, job_id: str) -> Any:
        """The job's model, to predict locally from raw rows as the server does: a `torch.nn.Module` (the
        network between the job's standardization and its probabilities or values) where torch is installed,
        else an onnxruntime `InferenceSession` of its ONNX export (input `rows`, output `output`)."""
        try:
            import torch  # noqa: F401
        except ImportError:
            import onnxruntime

            model = self._request("GET", f"/v1/jobs/{job_id}/artifacts/{ONNX_FILE}").content
            return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
        from steadyfit.models import servable_from_weights

        return servable_from_weights(self._request("GET", f"/v1/jobs/{job_id}/artifacts/weights.safetensors").content)

    # models
    def save_model(self, job_id: str, name: str | None = None) -> ModelRead:
        """Keep a succeeded job's weights (and ONNX export) as a model to start jobs from and predict with."""
        response = self._request("POST", f"/v1/jobs/{job_id}/model", json={"name": name})
        return ModelRead.model_validate(response.json())

    def upload_model(
        self, path: Path, model: dict[str, Any], *, input_shape: list[int] | None = None, name: str | None = None
    ) -> ModelRead:
        """Upload safetensors weights with the `model` block they fit (`input_shape` needed for a cnn)."""
        form = {"model": json.dumps(model), **({"name": name} if name else {})}
        if input_shape is not None:
            form["input_shape"] = json.dumps(input_shape)
        with path.open("rb") as file:
            response = self._request("POST", "/v1/models", files={"file": (path.name, file)}, data=form)
        return ModelRead.model_validate(response.json())

    def models(self, limit: int = 50) -> ModelList:
        return ModelList.model_validate(self._request("GET", "/v1/models", params={"limit": limit}).json())

    # data sets
    def upload_dataset(
        self,
        path: Path,
        *,
        task: str,
        target: str | None = None,
        name: str | None = None,
        impute: str = "none",
        image_size: int = 32,
        grayscale: bool = False,
    ) -> DatasetRead:
        """Upload a table (CSV or Parquet: `target` names the column to predict), an `.npz` of arrays `x` and
        `y`, or a `.zip` of class folders of images (resized to `image_size`, optionally `grayscale`)."""
        form = {"task": task, "impute": impute, "image_size": str(image_size), "grayscale": str(grayscale).lower()}
        form |= {key: value for key, value in (("target", target), ("name", name)) if value}
        with path.open("rb") as file:
            response = self._request("POST", "/v1/datasets", files={"file": (path.name, file)}, data=form)
        return DatasetRead.model_validate(response.json())

    def datasets(self, limit: int = 50) -> DatasetList:
        return DatasetList.model_validate(self._request("GET", "/v1/datasets", params={"limit": limit}).json())

    def dataset(self, dataset_id: str) -> DatasetRead:
        return DatasetRead.model_validate(self._request("GET", f"/v1/datasets/{dataset_id}").json())

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a data set and its stored arrays; it no longer counts against your storage quota."""
        self._request("DELETE", f"/v1/datasets/{dataset_id}")

    # webhooks
    def add_webhook(self, url: str, events: list[str], threshold: str | dict[str, Any] | None = None) -> WebhookCreated:
        """Have `events` (`job.succeeded`, ...) of your jobs and sweeps POSTed to `url`; the answer holds the
        signing secret, shown only this once. `metric.threshold` needs `threshold`: `"val_accuracy>=0.9"` or
        `{"metric": "val_accuracy", "op": ">=", "value": 0.9}`."""
        body: dict[str, Any] = {"url": url, "events": events}
        if threshold is not None:
            body["threshold"] = parse_threshold(threshold) if isinstance(threshold, str) else threshold
        response = self._request("POST", "/v1/webhooks", json=body)
        return WebhookCreated.model_validate(response.json())

    def webhooks(self, limit: int = 50) -> WebhookList:
        return WebhookList.model_validate(self._request("GET", "/v1/webhooks", params={"limit": limit}).json())

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"/v1/webhooks/{webhook_id}")

    def webhook_deliveries(self, webhook_id: str, limit: int = 50) -> DeliveryList:
        """A webhook's deliveries, newest first, each with its attempts."""
        response = self._request("GET", f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": limit})
        return DeliveryList.model_validate(response.json())


def _poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """What `read()` returns once `done` says so, read again every `POLL_SECONDS`; after `timeout` seconds,
    what it returned last."""
    deadline = time.monotonic() + timeout
    found = read()
    while not done(found) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        found = read()
    return found
