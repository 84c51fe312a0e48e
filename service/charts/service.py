"""The charts a job and a sweep have, built from what the database holds. Each is a Vega-Lite spec with its data
inline (`specs.py`); the router renders it to SVG or PNG when asked (`render.py`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from core.analyses import repository as analyses
from core.errors import NotFound
from core.jobs import repository as jobs
from core.spec.sweep import SweepCreate
from core.states import AnalysisKind, AnalysisStatus
from core.sweeps import repository as sweep_repository
from core.tenants.principal import Principal
from service.charts import specs
from service.charts.specs import ANALYSIS_CHARTS, EPOCH_CHARTS, JOB_CHARTS, PATH_CHARTS, SWEEP_CHARTS
from service.jobs import service as job_service
from service.paths import service as path_service
from service.sweeps import service as sweep_service


def job_chart(session: Session, job_id: str, name: str, principal: Principal) -> specs.Chart:
    """Chart `name` of the job, as of now (a running job's chart shows the epochs so far)."""
    job = job_service.get(session, job_id, principal)
    title = f"{job.name or job.id} · {name.replace('_', ' ')}"
    if name in EPOCH_CHARTS:
        return EPOCH_CHARTS[name](title, job, jobs.epochs_after(session, job_id, 0, None))
    if name in ANALYSIS_CHARTS:
        kind = AnalysisKind(name)
        analysis = analyses.get(session, job_id, kind)
        return ANALYSIS_CHARTS[kind](title, None if analysis is None else analysis.result)
    raise NotFound(_unknown(name, JOB_CHARTS))


def analysis_version(session: Session, job_id: str, name: str) -> tuple[str, bool]:
    """What a chart depends on beyond the job itself, for its ETag, and whether that has settled: an analysis
    chart's analysis (its status and last change), which may end after the job has; nothing for the others."""
    if name not in ANALYSIS_CHARTS:
        return "", True
    analysis = analyses.get(session, job_id, AnalysisKind(name))
    if analysis is None:
        return "-none", False
    settled = analysis.status in (AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED)
    return f"-{analysis.status}{analysis.updated_at.timestamp():.6f}", settled


def sweep_chart(session: Session, sweep_id: str, name: str, principal: Principal) -> specs.Chart:
    sweep = sweep_service.get(session, sweep_id, principal)
    if name not in SWEEP_CHARTS:
        raise NotFound(_unknown(name, SWEEP_CHARTS))
    body = SweepCreate.model_validate(sweep.spec)
    trials = sweep_repository.trials(session, sweep_id)
    metric = body.objective.metric
    reads = [sweep_service.trial_read(trial, metric) for trial in trials]
    rows = [{"number": t.number, "params": t.params, "objective": t.objective} for t in reads]
    _, shares = sweep_service.parameter_shares(sweep_id, body, trials)  # the most important first, once known
    title = f"{sweep.name or sweep.id} · parallel coordinates"
    return specs.parallel_coordinates(title, rows, metric, list(shares or ()))


def jobs_chart(session: Session, job_ids: list[str], metric: str, principal: Principal) -> specs.Chart:
    """Parallel coordinates of chosen jobs: an axis per spec field in which they differ, and one for their best
    `metric`; a job without it (still running, or of the other task) is not drawn."""
    chosen = [job_service.get(session, job_id, principal) for job_id in dict.fromkeys(job_ids)]
    drawn = [job for job in chosen if (job.best_metrics or {}).get(metric) is not None]
    fields = [_flatten(job.spec) for job in drawn]
    paths = {path for flat in fields for path in flat} - {"name"}
    # An axis needs a value from two jobs at least, and two different values: a field only one job has (a
    # block the others leave out) would be a point, not a line.
    values = {path: [repr(flat[path]) for flat in fields if flat.get(path) is not None] for path in paths}
    differing = {path for path, seen in values.items() if len(seen) > 1 and len(set(seen)) > 1}
    rows = [
        {
            "number": job.id[:8],
            "params": {path: flat[path] for path in differing if flat.get(path) is not None},
            "objective": (job.best_metrics or {})[metric],
        }
        for job, flat in zip(drawn, fields, strict=True)
    ]
    return specs.parallel_coordinates(f"{len(drawn)} of {len(chosen)} jobs · parallel coordinates", rows, metric)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A spec as {dotted path: value}; a list is one value, written as JSON text (`[64, 32]`)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix.removesuffix("."): json.dumps(value) if isinstance(value, list) else value}


def path_chart(session: Session, path_id: str, name: str, principal: Principal) -> specs.Chart:
    read = path_service.read(session, path_id, principal)
    if name not in PATH_CHARTS:
        raise NotFound(_unknown(name, PATH_CHARTS))
    points = [point.model_dump() for point in read.points]
    best, one_se = (None if choice is None else choice.value for choice in (read.best, read.one_se))
    return specs.path(f"{read.name or read.id} · {read.parameter} path", read.parameter, points, best, one_se)


def _unknown(name: str, valid: Any) -> str:
    return f"no chart `{name}`; the charts are: {', '.join(sorted(valid))}"
