"""Turning what a caller sends into the rows a model takes, float32 (n, features), with the job's preprocessing:

1. `rows`: numbers in the training features' order, or one array per image of the input shape (a grayscale
   image may drop its channel axis);
2. `records`, a CSV or Parquet file: values by column name. A numeric column is a feature as it is; a text
   column of the uploaded table is one-hot encoded over the values training saw (`column=value` features),
   and a value it never saw is an error;
3. an `.npz` file: its array `x`, read as `rows`; images (a PNG or JPEG, or a zip of them) for a model of
   square images, decoded and resized as an uploaded zip's were;
4. a missing value (a null, an empty CSV cell, a column left out) is an error unless the data set was uploaded
   with an imputation; then it is the training split's mean of that feature;
5. a column the model does not know is an error, as is a column it needs that is absent.
Each error is a 422 that names the row and column, or the columns. Standardization happens in the model.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ApiError, InvalidSpec
from service.datasets.arrays import IMAGE_MAGIC, ImageOptions, checked_members, is_archive, is_npz, read_images
from service.datasets.parsing import Caps, TableError
from service.predictions.runtime import Signature


@dataclass(frozen=True)
class Columns:
    """Where each column's values go among the features: numeric columns at one index, a text column's values
    at one index each."""

    signature: Signature

    @cached_property
    def text(self) -> dict[str, dict[str, int]]:
        names = self.signature.feature_names
        return {
            column: {name[len(column) + 1 :]: i for i, name in enumerate(names) if name.startswith(column + "=")}
            for column in self.signature.categorical_columns
        }

    @cached_property
    def numeric(self) -> dict[str, int]:
        taken = {i for values in self.text.values() for i in values.values()}
        return {name: i for i, name in enumerate(self.signature.feature_names) if i not in taken}

    @cached_property
    def names(self) -> list[str]:
        """The columns a record holds, in the training table's order."""
        order = {**self.numeric, **{column: min(values.values()) for column, values in self.text.items()}}
        return sorted(order, key=order.__getitem__)


def from_rows(rows: Sequence[Any] | np.ndarray, signature: Signature, field: str = "rows") -> np.ndarray:
    try:
        x = np.asarray(rows, dtype=np.float32)  # a null becomes NaN, handled as a missing value below
    except (ValueError, TypeError):
        raise InvalidSpec(field, "every row must be a list of numbers of the same length", "invalid_rows") from None
    shape, n_features = signature.input_shape, signature.n_features
    images = len(shape) == 3
    if images and x.ndim > 2 and (x.shape[1:] == shape or (shape[0] == 1 and x.shape[1:] == shape[1:])):
        x = x.reshape(len(x), n_features)
    if x.ndim != 2 or x.shape[1] != n_features:
        wanted = f"an array of shape {list(shape)} (channels, height, width) or " if images else ""
        got = "nothing" if x.size == 0 else f"shape {list(x.shape[1:])}"
        raise InvalidSpec(
            field,
            f"each row must be {wanted}{n_features} numbers ({_listed(signature.feature_names)}); got {got}",
            "wrong_shape",
        )
    return _filled(x, signature, field, lambda j: signature.feature_names[j])


def from_records(records: Sequence[Mapping[str, Any]], signature: Signature) -> np.ndarray:
    names = {name for record in records for name in record}
    columns = {name: [record.get(name) for record in records] for name in names}
    return from_columns(columns, len(records), signature, "records")


def from_columns(columns: Mapping[str, Sequence[Any]], n: int, signature: Signature, field: str) -> np.ndarray:
    """Rows from values by column name (None or NaN: missing)."""
    layout = Columns(signature)
    unexpected = sorted(set(columns) - set(layout.names))
    if unexpected:
        raise InvalidSpec(
            field, f"unexpected columns {unexpected}; the model takes {_listed(layout.names)}", "unexpected_columns"
        )
    missing = [name for name in layout.names if name not in columns]
    if missing and signature.imputation == "none":
        known = _listed(layout.names)
        raise InvalidSpec(field, f"missing columns {missing}; the model takes {known}", "missing_columns")
    x = np.full((n, signature.n_features), np.nan, dtype=np.float32)
    for name, values in columns.items():
        if name in layout.numeric:
            x[:, layout.numeric[name]] = _numbers(values, name, field)
        else:
            x[:, list(layout.text[name].values())] = _one_hot(values, layout.text[name], name, field)
    names = {i: name for name, i in layout.numeric.items()} | {
        i: column for column, values in layout.text.items() for i in values.values()
    }
    return _filled(x, signature, field, names.__getitem__)


def from_file(path: Path, signature: Signature, max_rows: int, max_pixels: int) -> tuple[np.ndarray, list[str] | None]:
    """Rows from an uploaded CSV, Parquet or `.npz` file, or images (a PNG or JPEG, or a zip of them), told
    apart by content; with the images' names."""
    with path.open("rb") as file:
        head = file.read(4)
    from service.datasets.reading import read_table  # pyarrow: imported by the first file, not at start

    width = len(signature.feature_names) + 1
    caps = Caps(max_rows, max_columns=width, max_categories=max_rows, max_encoded_bytes=4 * max_rows * width)
    try:
        if is_archive(head) and is_npz(path):
            return from_rows(_npz_x(path, caps), signature, "file"), None
        if is_archive(head) or head.startswith(IMAGE_MAGIC):
            names, x = read_images(path, _image_options(signature, max_pixels), caps)
            return x, names
        table = read_table(path, caps)
    except TableError as exc:
        if exc.status == 413:
            raise ApiError(str(exc), status=413) from exc
        raise InvalidSpec("file", str(exc), "unreadable_file") from exc
    columns = {name: column.to_pylist() for name, column in zip(table.names, table.columns, strict=True)}
    return from_columns(columns, table.rows, signature, "file"), None


def _image_options(signature: Signature, max_pixels: int) -> ImageOptions:
    shape = signature.input_shape
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2]:
        raise InvalidSpec("file", f"images can be sent to a model of square grayscale or RGB images, not {list(shape)}")
    return ImageOptions(side=shape[1], grayscale=shape[0] == 1, max_pixels=max_pixels)


def _npz_x(path: Path, caps: Caps) -> np.ndarray:
    with zipfile.ZipFile(path) as archive:
        checked_members(archive, caps)  # what it expands to, before anything is inflated
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files:
                raise InvalidSpec("file", f"the .npz has no array `x` (it has {arrays.files})", "no_x")
            return np.asarray(arrays["x"])
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InvalidSpec("file", f"not a readable .npz file: {exc}", "unreadable_file") from exc


def _numbers(values: Sequence[Any], column: str, field: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float32)
    for i, value in enumerate(values):
        if value is None or value == "":
            out[i] = np.nan
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise InvalidSpec(f"{field}[{i}].{column}", f"{value!r} is not a number", "not_a_number") from None
    return out


def _one_hot(values: Sequence[Any], known: dict[str, int], column: str, field: str) -> np.ndarray:
    order = {value: j for j, value in enumerate(known)}
    out = np.zeros((len(values), len(known)), dtype=np.float32)
    for i, value in enumerate(values):
        if value is None or value == "":
            out[i] = np.nan
        elif str(value) in order:
            out[i, order[str(value)]] = 1.0
        else:
            raise InvalidSpec(
                f"{field}[{i}].{column}",
                f"{value!r} was never seen in training; known values: {_listed(list(known))}",
                "unknown_category",
            )
    return out


def _filled(x: np.ndarray, signature: Signature, field: str, column_of: Any) -> np.ndarray:
    """x with missing values filled by the training means where the data set was imputed, else an error."""
    missing = ~np.isfinite(x)
    if not missing.any():
        return x
    if signature.imputation == "none":
        row, feature = (int(i) for i in np.argwhere(missing)[0])
        raise InvalidSpec(
            f"{field}[{row}]",
            f"`{column_of(feature)}` is missing or not finite; the training data had no imputation, so every value "
            "is needed",
            "missing_value",
        )
    return np.where(missing, signature.feature_mean, x).astype(np.float32)


def _listed(names: list[str], most: int = 12) -> str:
    shown = ", ".join(names[:most])
    return f"{shown}, … ({len(names)} in all)" if len(names) > most else shown
