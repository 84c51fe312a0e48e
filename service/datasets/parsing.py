"""Turn an uploaded table (CSV or Parquet) into a numeric feature matrix and a target vector.

Numeric columns stay as they are, text columns are one-hot encoded, missing values are an error
unless an imputation is asked for. numpy only: this runs in the API process.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Imputation = Literal["none", "mean", "median", "most_frequent"]
MISSING = {"", "na", "nan", "null", "none", "n/a"}
PARQUET_MAGIC = b"PAR1"


class TableError(ValueError):
    """The upload cannot be used; `status` is the HTTP status that says why (400 unreadable, 422 unusable)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Table:
    """A parsed table: column names and, per column, its values as strings or floats (None = missing)."""

    names: list[str]
    columns: list[list[str | float | None]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass(frozen=True)
class Encoded:
    features: np.ndarray  # float32 (rows, features)
    target: np.ndarray  # int64 class indices, or float32 values
    feature_names: list[str]
    class_names: list[str]
    class_counts: dict[str, int]
    categorical_columns: list[str]


def detect_format(head: bytes) -> Literal["csv", "parquet"]:
    """From the content, not the file name."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head[:4096]:
        raise TableError("the file is neither CSV text nor Parquet")
    return "csv"


def read_table(data: bytes, max_rows: int) -> Table:
    return _read_parquet(data, max_rows) if detect_format(data[:4096]) == "parquet" else _read_csv(data, max_rows)


def _read_csv(data: bytes, max_rows: int) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(f"line {line}: not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise TableError("the file is empty") from None
    except csv.Error as exc:
        raise TableError(f"line 1: {exc}") from exc
    names = [name.strip() for name in header]
    _check_names(names)
    columns: list[list[str | float | None]] = [[] for _ in names]
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(names):
                raise TableError(f"line {reader.line_num}: {len(row)} fields, the header has {len(names)}")
            for column, value in zip(columns, row, strict=True):
                value = value.strip()
                column.append(None if value.lower() in MISSING else value)
            if len(columns[0]) > max_rows:
                raise TableError(f"more than the limit of {max_rows} rows", status=413)
    except csv.Error as exc:
        raise TableError(f"line {reader.line_num}: {exc}") from exc
    return Table(names, columns)


def _read_parquet(data: bytes, max_rows: int) -> Table:
    import pyarrow.parquet as pq  # only uploads pay for importing it

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        if parquet.metadata.num_rows > max_rows:
            raise TableError(f"more than the limit of {max_rows} rows", status=413)
        arrow = parquet.read()
    except TableError:
        raise
    except Exception as exc:
        raise TableError(f"not a readable Parquet file: {exc}") from exc
    names = [str(name) for name in arrow.column_names]
    _check_names(names)
    columns: list[list[str | float | None]] = []
    for name in names:
        values = arrow.column(name).to_pylist()
        columns.append([_cell(v) for v in values])
    return Table(names, columns)


def _cell(value: object) -> str | float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def _check_names(names: list[str]) -> None:
    if not names or any(not name for name in names):
        raise TableError("line 1: every column needs a name in the header")
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise TableError(f"line 1: duplicate column names {duplicates}")


def encode(table: Table, target: str, task: Literal["classification", "regression"], impute: Imputation) -> Encoded:
    if target not in table.names:
        raise TableError(f"no column `{target}`; the columns are {table.names}", status=422)
    if table.rows < 10:
        raise TableError(f"{table.rows} rows; at least 10 are needed to split train/validation/test", status=422)
    features: list[np.ndarray] = []
    feature_names: list[str] = []
    categorical: list[str] = []
    for name, column in zip(table.names, table.columns, strict=True):
        if name == target:
            continue
        numeric = _as_numbers(column)
        if numeric is None:
            categorical.append(name)
            blocks, block_names = _one_hot(name, _imputed_text(name, column, impute))
            features.extend(blocks)
            feature_names.extend(block_names)
        else:
            features.append(_imputed_numbers(name, numeric, impute))
            feature_names.append(name)
    if not features:
        raise TableError("no feature columns besides the target", status=422)
    y, class_names, class_counts = _encode_target(table.columns[table.names.index(target)], target, task)
    x = np.stack(features, axis=1).astype(np.float32)
    return Encoded(x, y, feature_names, class_names, class_counts, categorical)


def _as_numbers(column: list[str | float | None]) -> np.ndarray | None:
    """The column as float64 with NaN for missing, or None when some value is text."""
    out = np.empty(len(column), dtype=np.float64)
    for i, value in enumerate(column):
        if value is None:
            out[i] = np.nan
            continue
        try:
            out[i] = float(value)
        except ValueError:
            return None
        if math.isinf(out[i]):
            return None
    return out


def _missing_error(name: str, count: int) -> TableError:
    return TableError(
        f"column `{name}` has {count} missing values; ask for an imputation (mean, median, most_frequent)",
        status=422,
    )


def _imputed_numbers(name: str, values: np.ndarray, impute: Imputation) -> np.ndarray:
    missing = np.isnan(values)
    if not missing.any():
        return values
    if impute == "none" or missing.all():
        raise _missing_error(name, int(missing.sum()))
    present = values[~missing]
    if impute == "mean":
        fill = float(present.mean())
    elif impute == "median":
        fill = float(np.median(present))
    else:
        counts = Counter(present.tolist())
        fill = max(counts, key=lambda v: (counts[v], -v))
    return np.where(missing, fill, values)


def _imputed_text(name: str, column: list[str | float | None], impute: Imputation) -> list[str]:
    missing = sum(value is None for value in column)
    if not missing:
        return [str(value) for value in column]
    if impute == "none" or missing == len(column):
        raise _missing_error(name, missing)
    counts = Counter(str(value) for value in column if value is not None)
    fill = min(counts, key=lambda v: (-counts[v], v))  # mean/median of text: the most frequent category
    return [fill if value is None else str(value) for value in column]


def _one_hot(name: str, values: list[str]) -> tuple[list[np.ndarray], list[str]]:
    categories = sorted(set(values))
    index = np.array([categories.index(v) for v in values])
    return [(index == i).astype(np.float64) for i in range(len(categories))], [f"{name}={c}" for c in categories]


def _encode_target(
    column: list[str | float | None], name: str, task: Literal["classification", "regression"]
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    missing = sum(value is None for value in column)
    if missing:
        raise TableError(f"the target `{name}` has {missing} missing values", status=422)
    if task == "regression":
        numbers = _as_numbers(column)
        if numbers is None:
            raise TableError(f"the target `{name}` has non-numeric values; a regression target is a number", 422)
        return numbers.astype(np.float32), [], {}
    labels = [_label(value) for value in column]
    counts = Counter(labels)
    if len(counts) < 2:
        raise TableError(f"the target `{name}` has a single class; classification needs two or more", 422)
    class_names = sorted(counts)
    lookup = {label: i for i, label in enumerate(class_names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64), class_names, dict(counts)


def _label(value: str | float | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
