"""What the datasets API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description='Refer to it in a job spec as `"dataset": {"id": ...}`.')
    owner: str = Field(description="Who it belongs to: the owner of the API key that created it.")
    name: str | None = Field(description="A label for people, if one was given.")
    filename: str | None = Field(description="The uploaded file's name, for display only.")
    format: Literal["csv", "parquet", "npz", "zip"] = Field(description="Detected from the content.")
    task: Literal["classification", "regression"] = Field(description="What a job trained on it predicts.")
    target: str = Field(description="The target column (`y` of an npz, `folder` of a zip of images).")
    rows: int = Field(description="Rows in the table (after the header), arrays' rows, or images.")
    columns: list[str] = Field(description="The columns of the upload, target included (npz: x, y).")
    input_shape: list[int] | None = Field(
        None, description="Images: (channels, height, width), which a `cnn` takes; null for a table."
    )
    feature_names: list[str] = Field(description="The model's inputs: numeric columns and one-hot `column=value`.")
    categorical_columns: list[str] = Field(description="Text columns, one-hot encoded.")
    class_counts: dict[str, int] | None = Field(description="Rows per class (classification).")
    imputation: Literal["none", "mean", "median", "most_frequent"] = Field(
        description="How missing feature values were filled (`impute` of the upload)."
    )
    size_bytes: int = Field(description="Size of the uploaded file.")
    stored_bytes: int = Field(description="What the encoded data set takes in storage: this counts against your quota.")
    checksum: str = Field(description="`sha256:` and the hex digest of the uploaded bytes.")
    created_at: datetime = Field(description="When it was uploaded.")


class DatasetList(BaseModel):
    items: list[DatasetRead] = Field(description="This page's data sets, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
