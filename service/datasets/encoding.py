"""Encoding a table as numbers with pyarrow and numpy: numeric columns as they are, text one-hot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.datasets.parsing import Caps, Encoded, Imputation, TableError, check_encoded_size
from service.datasets.reading import Table


@dataclass(frozen=True)
class _Categories:
    """A text column as category numbers: `index[i]` is row i's place in `names` (sorted), -1 when missing."""

    names: list[str]
    index: np.ndarray  # int32


@dataclass(frozen=True)
class _Numbers:
    """A numeric column, read again when the matrix is filled; `fill` replaces its missing values."""

    column: pa.ChunkedArray
    fill: float | None


def encode(
    table: Table, target: str, task: Literal["classification", "regression"], impute: Imputation, caps: Caps
) -> Encoded:
    """In two passes: the first decides each column's features and checks the caps, the second writes the
    matrix, so that no column is held as numbers beside it."""
    if target not in table.names:
        raise TableError(f"no column `{target}`; the columns are {table.names}", status=422)
    if table.rows < 10:
        raise TableError(f"{table.rows} rows; at least 10 are needed to split train/validation/test", status=422)
    blocks: list[_Numbers | _Categories] = []
    feature_names: list[str] = []
    categorical: list[str] = []
    for name, column in zip(table.names, table.columns, strict=True):
        if name == target:
            continue
        numbers = _as_numbers(column)
        if numbers is None:
            categories = _imputed_categories(name, _categories(name, column, caps), impute)
            categorical.append(name)
            blocks.append(categories)
            feature_names.extend(f"{name}={value}" for value in categories.names)
        else:
            blocks.append(_Numbers(column, _fill_value(name, numbers, impute)))
            feature_names.append(name)
        check_encoded_size(table.rows, len(feature_names), caps)  # before the next column's category numbers
    if not blocks:
        raise TableError("no feature columns besides the target", status=422)
    y, class_names, class_counts = encode_target(table.columns[table.names.index(target)], target, task, caps)
    x = _matrix(table.rows, blocks, len(feature_names))
    return Encoded(x, y, feature_names, class_names, class_counts, categorical)


def _matrix(rows: int, blocks: list[_Numbers | _Categories], width: int) -> np.ndarray:
    """The features as one float32 matrix, a column's numbers read only while they are written."""
    x = np.zeros((rows, width), dtype=np.float32)
    start = 0
    for block in blocks:
        if isinstance(block, _Categories):
            x[np.arange(rows), start + block.index] = 1.0
            start += len(block.names)
            continue
        numbers = _as_numbers(block.column)
        assert numbers is not None  # the first pass found it numeric
        x[:, start] = numbers
        if block.fill is not None:
            x[np.isnan(numbers), start] = block.fill
        start += 1
    return x


def _as_numbers(column: pa.ChunkedArray) -> np.ndarray | None:
    """The column as float64 with NaN for missing, or None when some value is not a finite number."""
    if pa.types.is_dictionary(column.type):
        dictionary, index = _dictionary(column)
        numbers = _as_numbers(pa.chunked_array([dictionary]))
        return None if numbers is None else np.append(numbers, np.nan)[index]
    kind = column.type
    if not (
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_string(kind)
    ):
        return None
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    out = values.to_numpy()  # nulls become NaN
    return None if np.isinf(out).any() else out


def _dictionary(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """A dictionary column's values and each row's place among them (len(values) for a null)."""
    unified = column.unify_dictionaries()
    dictionary = unified.chunks[0].dictionary if unified.num_chunks else pa.array([], pa.string())
    indices = pa.chunked_array([chunk.indices for chunk in unified.chunks], column.type.index_type)
    index = pc.fill_null(indices.cast(pa.int64()), len(dictionary)).to_numpy()
    return dictionary, index


def _categories(name: str, column: pa.ChunkedArray, caps: Caps) -> _Categories:
    """The distinct values of a text column, sorted, refused past `max_categories` before any is encoded."""
    try:
        # distinct values first, in the column's own type: only they are turned into text
        dictionary, index = _dictionary(column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column))
        if len(dictionary) > caps.max_categories:
            raise TableError(
                f"column `{name}` has {len(dictionary)} distinct values, over the limit `max_categories` of "
                f"{caps.max_categories}; drop the column or hash it into fewer values",
                status=422,
            )
        dictionary = dictionary.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TableError(f"column `{name}` is neither numbers nor text: {exc}", status=422) from exc
    order = pc.sort_indices(dictionary).to_numpy()  # UTF-8 byte order: the order of Python's sorted()
    place = np.empty(len(dictionary) + 1, dtype=np.int64)
    place[order] = np.arange(len(order))
    place[-1] = -1
    return _Categories(dictionary.take(order).to_pylist(), place[index].astype(np.int32))


def _missing_error(name: str, count: int) -> TableError:
    return TableError(
        f"column `{name}` has {count} missing values; ask for an imputation (mean, median, most_frequent)",
        status=422,
    )


def _fill_value(name: str, values: np.ndarray, impute: Imputation) -> float | None:
    """What replaces the missing numbers (None when there are none)."""
    missing = np.isnan(values)
    if not missing.any():
        return None
    if impute == "none" or missing.all():
        raise _missing_error(name, int(missing.sum()))
    present = values[~missing]
    if impute == "mean":
        return float(present.mean())
    if impute == "median":
        return float(np.median(present))
    distinct, counts = np.unique(present, return_counts=True)
    return float(distinct[np.argmax(counts)])  # the smallest of the most frequent


def _imputed_categories(name: str, categories: _Categories, impute: Imputation) -> _Categories:
    missing = categories.index < 0
    count = int(missing.sum())
    if not count:
        return categories
    if impute == "none" or count == len(categories.index):
        raise _missing_error(name, count)
    counts = np.bincount(categories.index[~missing], minlength=len(categories.names))
    fill = int(np.argmax(counts))  # mean/median of text: the most frequent category, the first in order on a tie
    return _Categories(categories.names, np.where(missing, fill, categories.index))


def encode_target(
    column: pa.ChunkedArray, name: str, task: Literal["classification", "regression"], caps: Caps
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    missing = column.null_count
    if missing:
        raise TableError(f"the target `{name}` has {missing} missing values", status=422)
    numbers = _as_numbers(column)
    if task == "regression":
        if numbers is None:
            raise TableError(f"the target `{name}` has non-numeric values; a regression target is a number", 422)
        return numbers.astype(np.float32), [], {}
    if numbers is None:
        categories = _categories(name, column, caps)
        labels, index = categories.names, categories.index
    else:
        distinct, index = np.unique(numbers, return_inverse=True)
        if len(distinct) > caps.max_categories:
            raise TableError(
                f"the target `{name}` has {len(distinct)} classes, over the limit `max_categories` of "
                f"{caps.max_categories}; is the task regression?",
                status=422,
            )
        labels = [_label(float(value)) for value in distinct]
    if len(labels) < 2:
        raise TableError(f"the target `{name}` has a single class; classification needs two or more", 422)
    class_names = sorted(labels)
    place = {label: i for i, label in enumerate(class_names)}
    y = np.array([place[label] for label in labels], dtype=np.int64)[index]
    counts = np.bincount(y, minlength=len(class_names))
    return y, class_names, {label: int(count) for label, count in zip(class_names, counts, strict=True)}


def _label(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
