"""HTTP routes for a job's analyses: /v1/jobs/{job_id}/analyses, and one read route per kind
(/pruning, /confusion, /landscape, /lr_range)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, status

from core.states import AnalysisKind
from service.analyses import service
from service.analyses.schemas import AnalysisCreate, AnalysisList, AnalysisRead
from service.deps import QueueDep, SessionDep
from service.errors import Problem
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/jobs", tags=["analyses"])

JobId = Annotated[str, Path(description="The job's `id`.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No job with this id, or no analysis of this kind of it yet."}
}
DESCRIPTIONS = {
    AnalysisKind.ONNX: "The kept model exported to ONNX, made when the job succeeded (or on request for an older "
    "job): the artifact `model.onnx` takes raw rows (`input`) and gives class probabilities or values (`output`), "
    "the job's standardization inside; its metadata `steadyfit` holds the feature and class names. It is stored "
    "only after `onnx.checker` accepts it and onnxruntime matches torch on the test split within 1e-5 "
    "(`largest_difference`). POST /v1/jobs/{id}/predict answers with it. Method: workers/analyses/onnx.py.",
    AnalysisKind.PRUNING: "The pruning report, computed when the job succeeded: the kept Linear/Conv weights pruned "
    "by global magnitude to 0, 25, 50, 75, 90, 95 and 99 % sparsity without retraining (`levels`, each with its "
    "validation and test metrics and the non-zero `weights` and `parameters`), and `chosen_sparsity`, the highest "
    "within one point of the unpruned validation accuracy (1 % of its loss for regression), whose weights are "
    "the artifact `weights-pruned.safetensors`. Rules: workers/analyses/pruning.py.",
    AnalysisKind.CONFUSION: "The test split's confusion matrix (rows: the true class, columns: the predicted one) "
    "and each class's precision, recall, F1 and support; classification jobs.",
    AnalysisKind.LANDSCAPE: "The loss landscape at the kept weights (ask with `analysis: {landscape: true}` in the "
    "spec, or POST /v1/jobs/{id}/analyses): 1-D slices of training and validation loss and a 2-D slice of "
    "training loss along filter-normalized random directions (`slices`), the top Hessian eigenvalue "
    "(`top_eigenvalue`), Hutchinson's trace estimate (`hessian_trace`) and ε-sharpness (`sharpness`). The same "
    "seed gives the same numbers. Method: workers/analyses/landscape.py.",
    AnalysisKind.LR_RANGE: "A learning-rate range test of the job's spec (Smith, 2017): the rate rises "
    "exponentially over a short run, `rates` and smoothed `losses` are recorded, and `suggested_lr` is the rate "
    "at the lowest loss divided by 10. Method: workers/analyses/lr_range.py.",
}
EXAMPLES: dict[AnalysisKind, dict[str, Any]] = {
    AnalysisKind.ONNX: {"file": "model.onnx", "bytes": 41210, "opset": 17, "largest_difference": 1.2e-7},
    AnalysisKind.PRUNING: {"chosen_sparsity": 0.75, "weights_total": 16512, "levels": [{"sparsity": 0.0}]},
    AnalysisKind.CONFUSION: {"classes": ["no", "yes"], "matrix": [[40, 3], [5, 32]], "accuracy": 0.9},
    AnalysisKind.LANDSCAPE: {"top_eigenvalue": 12.4, "hessian_trace": 310.2, "sharpness": 0.8},
    AnalysisKind.LR_RANGE: {"suggested_lr": 0.0009, "min_loss_lr": 0.009, "stopped_early": True},
}


@router.post(
    "/{job_id}/analyses",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_job_analysis",
    responses={
        **NOT_FOUND,
        409: {"model": Problem, "description": "The job has no kept weights to study (not succeeded)."},
        422: {"model": Problem, "description": "An unknown kind or option; `errors` names each."},
    },
)
def create_job_analysis(
    job_id: JobId,
    body: Annotated[AnalysisCreate, Body(openapi_examples={"landscape": {"value": {"kind": "landscape"}}})],
    session: SessionDep,
    queue: QueueDep,
    principal: PrincipalDep,
) -> AnalysisRead:
    """Ask a worker for an analysis of a job: `landscape` or `lr_range` (or `pruning` and `confusion` again).
    It is queued at once; read it at its route (e.g. GET /v1/jobs/{id}/landscape) until it has succeeded or
    failed. Asking again replaces the earlier result of that kind."""
    return service.request(session, queue, job_id, body, principal)


@router.get("/{job_id}/analyses", operation_id="list_job_analyses", responses=NOT_FOUND)
def list_job_analyses(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> AnalysisList:
    """Every analysis of the job, with its status and result."""
    return service.of_job(session, job_id, principal)


def _read_route(kind: AnalysisKind) -> None:
    def read(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> AnalysisRead:
        return service.read(session, job_id, kind, principal)

    example = {
        "job_id": "3f2a9c01-5a0e-4c1b-9a7e-0c6d2b1e8f00",
        "kind": kind.value,
        "status": "succeeded",
        "options": {},
        "result": EXAMPLES[kind],
        "error": None,
        "created_at": "2026-12-04T01:00:00Z",
        "updated_at": "2026-12-04T01:00:02Z",
    }
    router.add_api_route(
        f"/{{job_id}}/{kind.value}",
        read,
        methods=["GET"],
        operation_id=f"get_job_{kind.value}",
        summary=f"The job's {kind.value.replace('_', ' ')} analysis",
        description=DESCRIPTIONS[kind],
        response_model=AnalysisRead,
        responses={**NOT_FOUND, 200: {"content": {"application/json": {"example": example}}}},
    )


for _kind in AnalysisKind:
    _read_route(_kind)
