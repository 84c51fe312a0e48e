"""Running an analysis of a job and recording it: the row goes running, then succeeded with the result as data,
or failed with the reason. A failure never touches the job, which stays `succeeded`.

The ONNX export, the pruning report and (classification) the confusion matrix run right after a job succeeds,
in the same process, on the weights and data it has in hand; an analysis asked for later
(POST /v1/jobs/{id}/analyses) is a task of its own, which loads them again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from core.analyses import repository
from core.artifacts import ArtifactStore, job_prefix
from core.db.engine import Database
from core.settings import Settings
from core.spec.job import JobSpec
from core.states import AnalysisKind, AnalysisStatus
from workers.analyses import confusion, landscape, lr_range, onnx, pruning
from workers.analyses.context import Context
from workers.training.data import PreparedData

log = logging.getLogger(__name__)

ANALYSES: dict[AnalysisKind, Callable[[Context], dict[str, Any]]] = {
    AnalysisKind.ONNX: onnx.run,
    AnalysisKind.PRUNING: pruning.run,
    AnalysisKind.CONFUSION: confusion.run,
    AnalysisKind.LANDSCAPE: landscape.run,
    AnalysisKind.LR_RANGE: lr_range.run,
}


def after_success(spec: JobSpec, task: str) -> list[AnalysisKind]:
    """The analyses every succeeded job gets, and those its spec opts into."""
    kinds = [AnalysisKind.ONNX, AnalysisKind.PRUNING]  # the model first: predictions wait for it
    if task == "classification":
        kinds.append(AnalysisKind.CONFUSION)
    if spec.analysis is not None and spec.analysis.landscape:
        kinds.append(AnalysisKind.LANDSCAPE)
    return kinds


def analyze(
    database: Database,
    artifacts: ArtifactStore,
    settings: Settings,
    job_id: str,
    kind: AnalysisKind,
    spec: JobSpec,
    data: PreparedData,
    weights: dict[str, torch.Tensor] | None,
    device: torch.device,
) -> None:
    """Run analysis `kind` of the job and record it (the row must exist: queued)."""
    with database.session() as session:
        analysis = repository.get(session, job_id, kind)
        if analysis is None:
            return
        options = dict(analysis.options)
        repository.record(session, job_id, kind, AnalysisStatus.RUNNING)
    context = Context(
        spec=spec,
        data=data,
        weights=weights,
        options=options,
        seconds=settings.analysis_seconds,
        rows=settings.analysis_rows,
        store=lambda name, blob: artifacts.put(job_prefix(job_id) + name, blob),
        device=device,
    )
    try:
        result = ANALYSES[kind](context)
    except Exception as exc:
        log.exception("the %s analysis of job %s failed", kind, job_id)
        with database.session() as session:
            repository.record(session, job_id, kind, AnalysisStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return
    with database.session() as session:
        repository.record(session, job_id, kind, AnalysisStatus.SUCCEEDED, result=finite(result))


def finite(value: Any) -> Any:
    """The result with each non-finite number as null: JSON (and PostgreSQL) has no NaN or infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
