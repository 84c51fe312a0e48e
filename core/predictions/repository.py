"""All SQL about batch predictions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Prediction
from core.states import PredictionStatus


def add(session: Session, prediction: Prediction) -> Prediction:
    session.add(prediction)
    session.flush()
    return prediction


def get(session: Session, prediction_id: str) -> Prediction | None:
    return session.get(Prediction, prediction_id)


def record(session: Session, prediction_id: str, status: PredictionStatus, **values: Any) -> None:
    """Set the status (and rows_done, error) in one statement; a redelivered task starts it again."""
    session.execute(
        update(Prediction).where(Prediction.id == prediction_id).values(status=status, updated_at=utcnow(), **values)
    )
