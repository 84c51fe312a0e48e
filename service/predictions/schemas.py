"""Request and response bodies of the prediction routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictRequest(BaseModel):
    """Exactly one of `rows` and `records`."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Any] | None = Field(
        None,
        min_length=1,
        description="Rows of numbers in the training features' order (GET the job's model card: "
        "`feature_names`), or, for an image model, one array per image of its input shape (channels, height, "
        "width; a grayscale image may be height x width). Raw values: the model standardizes them.",
    )
    records: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        description="Rows as {column: value}, for a model trained on an uploaded table: numbers for numeric "
        "columns, the text itself for text columns (one-hot encoded as in training).",
    )

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.rows is None) == (self.records is None):
            raise ValueError("give exactly one of `rows` and `records`")
        return self


class PredictionRead(BaseModel):
    """Predictions for each row, in the order sent: columns of an answer rather than an object per row."""

    source_id: str = Field(description="The job, or the model, whose ONNX export answered.")
    task: Literal["classification", "regression"] = Field(description="The job's task: what the answers are.")
    rows: int = Field(description="How many rows were predicted.")
    names: list[str] | None = Field(None, description="Images sent as files: each one's name, in answer order.")
    classes: list[str] | None = Field(None, description="Classification: the class names, in probability order.")
    predicted: list[str] | None = Field(None, description="Classification: each row's most probable class.")
    probabilities: list[list[float]] | None = Field(
        None, description="Classification: each row's probability of each class (they sum to 1)."
    )
    values: list[float] | None = Field(None, description="Regression: each row's predicted value.")


class BatchPredictionRead(BaseModel):
    """A batch prediction: rows answered by a worker, then downloaded as CSV from `file`."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="GET /v1/predictions/{id} to follow it.")
    owner: str = Field(description="Who asked for it.")
    job_id: str | None = Field(description="The job whose model answers (or `model_id`).")
    model_id: str | None = Field(description="The saved model that answers (or `job_id`).")
    status: Literal["queued", "running", "succeeded", "failed"] = Field(description="Where it stands.")
    rows: int = Field(description="Rows to predict.")
    rows_done: int = Field(description="Rows answered so far.")
    error: str | None = Field(description="Why it failed.")
    file: str | None = Field(
        None, description="Once succeeded: where to download the CSV (row, [name], predicted, p_<class>… or value)."
    )
    created_at: datetime = Field(description="When it was asked for.")
    updated_at: datetime = Field(description="Its last change.")
