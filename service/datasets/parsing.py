"""Turn an uploaded table (CSV or Parquet) into a numeric feature matrix and a target vector.

Numeric columns stay as they are, text columns are one-hot encoded, missing values are an error
unless an imputation is asked for.

Where this runs, and why there. The API process parses the upload while the request waits, as before:
the response describes the data set (rows, features, classes), and a worker task would turn that into a
second, polled resource. What keeps the API process small are the caps, all checked before the memory
they bound is taken:
1. the file's bytes (`max_upload_bytes`, counted while the body streams in) and rows (`max_upload_rows`);
2. its columns (`max_upload_columns`), from the header or the Parquet metadata, before any value is read;
3. the distinct values of each text column and of a classification target (`max_categories`), counted by
   pyarrow before anything is one-hot encoded;
4. the encoded matrix, rows x features x 4 bytes (`max_encoded_bytes`), before it is allocated.
Columns are read with pyarrow, never as Python objects: a CSV's cells as strings (one buffer per column),
a Parquet file's text columns dictionary-encoded as stored, so a repeated string is held once. The
encoding is vectorised (pyarrow and numpy). One upload at a time parses in an API process
(`service/datasets/router.py`), so the worst case above is the process's too; BENCHMARKS.md has its
peak RSS.
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Imputation = Literal["none", "mean", "median", "most_frequent"]
MISSING = ["", "na", "nan", "null", "none", "n/a"]  # in a CSV, compared after trimming and lower-casing
PARQUET_MAGIC = b"PAR1"
CHUNK = 2**20


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
class Table:
    """A parsed table: column names and, per column, its values as pyarrow arrays (null = missing)."""

    names: list[str]
    columns: list[pa.ChunkedArray]

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


def parse(
    path: Path, target: str, task: Literal["classification", "regression"], impute: Imputation, caps: Caps
) -> tuple[list[str], Encoded]:
    """The table's column names and its encoding. The table is freed before this returns, and pyarrow's
    allocator hands its memory back to the system, so that what comes next (storing) does not stack on it."""
    table = read_table(path, caps)
    try:
        return table.names, encode(table, target, task, impute, caps)
    finally:
        del table
        pa.default_memory_pool().release_unused()


def read_table(path: Path, caps: Caps) -> Table:
    with path.open("rb") as file:
        head = file.read(4096)
    return _read_parquet(path, caps) if detect_format(head) == "parquet" else _read_csv(path, caps)


def _read_csv(path: Path, caps: Caps) -> Table:
    import pyarrow.csv as pa_csv  # only uploads pay for importing it

    header = _csv_header(path)
    _check_names([name.strip() for name in header], caps)
    _check_text(path)

    invalid: list[pa_csv.InvalidRow] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        invalid.append(row)  # an exception raised here would not reach the caller
        return "error"

    try:
        arrow = pa_csv.read_csv(
            path,
            # one thread: the row numbers of errors are known, and an upload does not take every core
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=16 * CHUNK),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=refuse),
            # every cell as text: a type guessed from the first block would reject a later value
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )
    except pa.ArrowInvalid as exc:
        if invalid:
            row = invalid[0]
            raise TableError(
                f"line {row.number}: {row.actual_columns} fields, the header has {row.expected_columns}"
            ) from None
        raise TableError(str(exc).removeprefix("CSV parse error: ")) from exc
    if arrow.num_rows > caps.max_rows:
        raise TableError(f"more than the limit of {caps.max_rows} rows", status=413)
    raw = arrow.columns
    del arrow
    cells = []
    while raw:  # each column's cells as read are freed once they are trimmed
        cells.append(_csv_cells(raw.pop(0)))
    return Table([name.strip() for name in header], cells)


def _check_text(path: Path) -> None:
    """UTF-8 throughout and every quote closed; pyarrow would take an unclosed quote to the end of the file."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = quotes = 0
    last_quote_line = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise TableError(f"line {line}: not UTF-8 text") from exc
            if b'"' in chunk:
                quotes += chunk.count(b'"')
                last_quote_line = lines + chunk[: chunk.rindex(b'"')].count(b"\n") + 1
            lines += chunk.count(b"\n")
    if quotes % 2:
        raise TableError(f"line {last_quote_line}: a quoted field is not closed")


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:  # _check_text says where
        try:
            return next(csv.reader(file, strict=True))
        except StopIteration:
            raise TableError("the file is empty") from None
        except csv.Error as exc:
            raise TableError(f"line 1: {exc}") from exc


def _csv_cells(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trimmed, with the words of MISSING as nulls."""
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.is_in(pc.utf8_lower(trimmed), pa.array(MISSING)), pa.scalar(None, pa.string()), trimmed)


def _read_parquet(path: Path, caps: Caps) -> Table:
    import pyarrow.parquet as pq  # only uploads pay for importing it

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        names = [str(name) for name in schema.names]
        _check_names(names, caps)
        if parquet.metadata.num_rows > caps.max_rows:
            raise TableError(f"more than the limit of {caps.max_rows} rows", status=413)
        # text as stored, one copy of each distinct value; decoded to one string per row it could be huge
        text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_binary(field.type)]
        arrow = pq.ParquetFile(path, read_dictionary=text).read()
    except TableError:
        raise
    except Exception as exc:
        raise TableError(f"not a readable Parquet file: {exc}") from exc
    return Table(names, [_nan_as_null(column) for column in arrow.columns])


def _nan_as_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(column.type):
        return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column


def _check_names(names: list[str], caps: Caps) -> None:
    if not names or any(not name for name in names):
        raise TableError("line 1: every column needs a name in the header")
    if len(names) > caps.max_columns:
        raise TableError(f"{len(names)} columns, over the limit `max_upload_columns` of {caps.max_columns}", 422)
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise TableError(f"line 1: duplicate column names {duplicates}")


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
        _check_size(table.rows, len(feature_names), caps)  # before the next column's category numbers, too
    if not blocks:
        raise TableError("no feature columns besides the target", status=422)
    y, class_names, class_counts = _encode_target(table.columns[table.names.index(target)], target, task, caps)
    x = _matrix(table.rows, blocks, len(feature_names))
    return Encoded(x, y, feature_names, class_names, class_counts, categorical)


def _check_size(rows: int, width: int, caps: Caps) -> None:
    size = rows * width * 4
    if size > caps.max_encoded_bytes:
        raise TableError(
            f"encoded, the table would be {size} bytes or more ({rows} rows x {width} features), over the limit "
            f"`max_encoded_bytes` of {caps.max_encoded_bytes}; drop text columns or hash them into fewer values",
            status=422,
        )


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
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column if pa.types.is_string(column.type) else pc.cast(column, pa.string()))
    dictionary, index = _dictionary(column)
    try:
        dictionary = dictionary.cast(pa.string())
    except pa.ArrowInvalid as exc:
        raise TableError(f"column `{name}`: {exc}", status=422) from exc
    if len(dictionary) > caps.max_categories:
        raise TableError(
            f"column `{name}` has {len(dictionary)} distinct values, over the limit `max_categories` of "
            f"{caps.max_categories}; drop the column or hash it into fewer values",
            status=422,
        )
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


def _encode_target(
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
