"""Reading an upload column-wise with pyarrow: CSV cells as strings, Parquet text as its dictionary."""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from service.datasets.parsing import Caps, TableError, check_encoded_size, detect_format

MISSING = ["", "na", "nan", "null", "none", "n/a"]  # in a CSV, compared after trimming and lower-casing
CHUNK = 2**20


@dataclass(frozen=True)
class Table:
    """A parsed table: column names and, per column, its values as pyarrow arrays (null = missing)."""

    names: list[str]
    columns: list[pa.ChunkedArray]

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


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
        # a few bytes can describe many rows: each column but the target is one feature at least
        check_encoded_size(parquet.metadata.num_rows, len(names) - 1, caps)
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
