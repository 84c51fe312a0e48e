"""Turn an uploaded table (CSV or Parquet) into a numeric feature matrix and a target vector.

Numeric columns stay as they are, text columns are one-hot encoded, missing values are an error
unless an imputation is asked for.

Where this runs: in the API process, while the request waits, within caps. The response describes the
data set (rows, features, classes, what was refused and why); a worker task would make that a second,
polled resource, and workers are where torch and the GPU are. What keeps the API process small instead:
1. the file's bytes (`max_upload_bytes`), counted while the body streams in, and its rows
   (`max_upload_rows`: from the Parquet metadata before reading; a CSV's once read, within its bytes);
2. its columns (`max_upload_columns`), from the header or the Parquet metadata, before any value is read;
3. the distinct values of each text column and of a classification target (`max_categories`), counted by
   pyarrow before anything is one-hot encoded;
4. the encoded matrix, rows x features x 4 bytes (`max_encoded_bytes`): for a Parquet file, whose few
   bytes can describe many rows, from its metadata before it is read; then after each column, before the
   matrix is allocated;
5. one upload at a time parses in an API process (`app.state.parsing`, taken in `router.py`), so one
   upload's bound is the process's.
With the default caps the worst upload raises a `steadyfit api` from about 195 MiB to under 800 MiB, and
lower `max_upload_bytes` and `max_encoded_bytes` lower it (BENCHMARKS.md, `bench/uploads.py`).

Columns are read with pyarrow, never as Python objects (`reading.py`): a CSV's cells as strings (one buffer
per column), a Parquet file's text columns dictionary-encoded as stored, so a repeated string is held once.
The encoding is vectorised with pyarrow and numpy (`encoding.py`). Both are imported by the first upload,
not when the API starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

Imputation = Literal["none", "mean", "median", "most_frequent"]
PARQUET_MAGIC = b"PAR1"


class TableError(ValueError):
    """The upload cannot be used; `status` is the HTTP status that says why (400 unreadable, 422 unusable)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caps:
    """What one upload may hold; see the module docstring for where each is checked."""

    max_rows: int
    max_columns: int
    max_categories: int
    max_encoded_bytes: int


@dataclass(frozen=True)
class Encoded:
    features: np.ndarray  # float32 (rows, features)
    target: np.ndarray  # int64 class indices, or float32 values
    feature_names: list[str]
    class_names: list[str]
    class_counts: dict[str, int]
    categorical_columns: list[str]


@dataclass(frozen=True)
class Decoded:
    """An upload read and encoded: a table, an `.npz` of arrays or a `.zip` of images (arrays.py)."""

    format: Literal["csv", "parquet", "npz", "zip"]
    columns: list[str]
    target: str
    encoded: Encoded
    input_shape: list[int] | None  # (channels, height, width) of images


def detect_format(head: bytes) -> Literal["csv", "parquet"]:
    """From the content, not the file name."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head[:4096]:
        raise TableError("the file is neither CSV text nor Parquet")
    return "csv"


def check_encoded_size(rows: int, width: int, caps: Caps) -> None:
    """Refuse a table whose encoding would be over `max_encoded_bytes` with `width` features or more."""
    size = rows * width * 4
    if size > caps.max_encoded_bytes:
        raise TableError(
            f"encoded, the table would be {size} bytes or more ({rows} rows x {width} features), over the limit "
            f"`max_encoded_bytes` of {caps.max_encoded_bytes}; drop text columns or hash them into fewer values",
            status=422,
        )


def parse(
    path: Path, target: str, task: Literal["classification", "regression"], impute: Imputation, caps: Caps
) -> tuple[list[str], Encoded]:
    """The table's column names and its encoding. The table is freed before this returns, and pyarrow's
    allocator hands its memory back to the system, so that what comes next (storing) does not stack on it."""
    import pyarrow as pa  # only uploads pay for importing it

    from service.datasets.encoding import encode
    from service.datasets.reading import read_table

    table = read_table(path, caps)
    try:
        return table.names, encode(table, target, task, impute, caps)
    finally:
        del table
        pa.default_memory_pool().release_unused()
