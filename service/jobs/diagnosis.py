"""GET /v1/jobs/{job_id}/diagnosis: the job's epochs so far through `core/jobs/diagnosis.py`, as the API shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue
from sqlalchemy.orm import Session

from core.jobs import diagnosis, repository
from core.states import TERMINAL
from core.tenants.principal import Principal
from service.jobs import service
from service.states import JobStatusValue


class EpochGap(BaseModel):
    epoch: int = Field(description="The epoch.")
    gap: float | None = Field(description="val_loss minus the training data loss (the penalty left out).")


class SuggestionRead(BaseModel):
    changes: dict[str, JsonValue] = Field(
        description="Spec fields to change, by dotted path (as sweeps take them): submit the job's spec with "
        "these set to try it."
    )
    reason: str = Field(description="Why this change, in a sentence.")


class DiagnosisRead(BaseModel):
    job_id: str = Field(description="The job diagnosed.")
    status: JobStatusValue = Field(description="The job's status when it was read.")
    final: bool = Field(description="True once the job has ended: the diagnosis will not change any more.")
    verdict: Literal["good_fit", "overfitting", "underfitting", "unstable"] = Field(
        description="`overfitting`: validation loss rises beyond its noise while training loss falls; "
        "`underfitting`: training loss stays high and flat next to a constant prediction's; `unstable`: a "
        "non-finite loss, a loss spike or a gradient blow-up; `good_fit` otherwise (and before 5 epochs)."
    )
    onset_epoch: int | None = Field(
        description="The first epoch of the rise (overfitting) or of the instability; null for the others."
    )
    gaps: list[EpochGap] = Field(description="The generalization gap of every epoch so far.")
    evidence: dict[str, float | int | bool | None] = Field(
        description="The numbers the verdict rests on: e.g. `best_epoch`, `best_smoothed_val_loss`, `noise`, "
        "`rise`, `train_to_baseline`, `baseline_val_loss`, `dead_units`, `spike_epoch`."
    )
    suggestions: list[SuggestionRead] = Field(description="1 to 3 spec changes to try, the likeliest first.")


EXAMPLE = {
    "job_id": "3f2a9c01-5a0e-4c1b-9a7e-0c6d2b1e8f00",
    "status": "succeeded",
    "final": True,
    "verdict": "overfitting",
    "onset_epoch": 12,
    "gaps": [{"epoch": 1, "gap": 0.02}, {"epoch": 2, "gap": 0.05}],
    "evidence": {"best_epoch": 11, "best_smoothed_val_loss": 0.41, "noise": 0.02, "rise": 0.35},
    "suggestions": [{"changes": {"model.dropout": 0.3, "regularization.l2": 0.001}, "reason": "regularize harder"}],
}


def read(session: Session, job_id: str, principal: Principal) -> DiagnosisRead:
    job = service.get(session, job_id, principal)
    epochs = repository.epochs_after(session, job_id, 0, None)
    found = diagnosis.diagnose(epochs, job.spec)
    return DiagnosisRead(
        job_id=job.id,
        status=job.status,
        final=job.status in TERMINAL,
        verdict=found.verdict,
        onset_epoch=found.onset_epoch,
        gaps=[EpochGap(epoch=epoch["epoch"], gap=gap) for epoch, gap in zip(epochs, found.gaps, strict=True)],
        evidence=found.evidence,
        suggestions=[SuggestionRead(changes=s.changes, reason=s.reason) for s in found.suggestions],
    )
