"""Data for the engine: built-in and synthetic sets, split into train/validation/test and standardized.

Everything here is local: the catalog's built-in sets ship inside scikit-learn, the synthetic ones are generated.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from core.spec.catalog import CATALOG
from core.spec.job import DatasetSpec, JobSpec, Task


@dataclass(frozen=True)
class PreparedData:
    """Split, standardized arrays: x float32 (n, features); y int64 class indices or float32 targets."""

    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int  # 0 for regression
    input_shape: tuple[int, ...]  # (n_features,), or (channels, height, width) for image sets
    feature_mean: np.ndarray  # training-split statistics that standardized x
    feature_std: np.ndarray
    feature_names: list[str]
    class_names: list[str]  # empty for regression
    # An uploaded table's text columns, one-hot encoded as `column=value` features, and how its missing
    # values were filled: what a prediction needs to turn records into rows like these.
    categorical_columns: list[str] = field(default_factory=list)
    imputation: str = "none"

    def content_hash(self) -> str:
        """`sha256:` and the digest of the arrays the job trains, validates and tests on (split and
        standardized): the same data set, split and seed give the same hash."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return "sha256:" + digest.hexdigest()

    def model_card(self, spec: JobSpec) -> dict[str, Any]:
        """What a user needs beside the weights to use them: the spec and the preprocessing."""
        return {
            "spec": spec.model_dump(mode="json"),
            "task": self.task,
            "input_shape": list(self.input_shape),
            "feature_names": self.feature_names,
            "feature_mean": self.feature_mean.tolist(),
            "feature_std": self.feature_std.tolist(),
            "class_names": self.class_names,
            "categorical_columns": self.categorical_columns,
            "imputation": self.imputation,
        }


def load_dataset(spec: DatasetSpec, seed: int) -> PreparedData:
    """Load a built-in set or generate a synthetic one (core/spec/catalog.py), then split and standardize it
    with `seed`."""
    if spec.name is None:
        raise ValueError("an uploaded data set (`id`) is read by the caller and passed to prepare_arrays")
    entry = CATALOG[spec.name]
    loaded = entry.load(spec, seed)
    image_shape = entry.input_shape if entry.image else None
    return prepare_arrays(
        loaded.x, loaded.y, entry.task, spec, seed, loaded.feature_names, loaded.class_names, image_shape
    )


def prepare_arrays(
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    spec: DatasetSpec,
    seed: int,
    feature_names: list[str],
    class_names: list[str],
    image_shape: tuple[int, ...] | None = None,
) -> PreparedData:
    """Split rows into train/validation/test by the spec's fractions and standardize x by the train split.

    Classification y holds class indices into `class_names`. Each split is stratified when every class
    has at least two rows and the split has room for one row per class. A feature whose training std
    is 0 is divided by 1 instead.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    _check_arrays(x, y, task, feature_names, class_names, image_shape)
    y = y.astype(np.int64) if task == "classification" else y.astype(np.float32)
    train, val, test = _split_indices(y, task, spec, seed)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0

    def scaled(rows: np.ndarray) -> np.ndarray:
        return ((x[rows] - mean) / std).astype(np.float32)

    return PreparedData(
        task=task,
        x_train=scaled(train),
        y_train=y[train],
        x_val=scaled(val),
        y_val=y[val],
        x_test=scaled(test),
        y_test=y[test],
        n_classes=len(class_names),
        input_shape=image_shape or (x.shape[1],),
        feature_mean=mean.astype(np.float32),
        feature_std=std.astype(np.float32),
        feature_names=list(feature_names),
        class_names=list(class_names),
    )


def _check_arrays(
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    feature_names: list[str],
    class_names: list[str],
    image_shape: tuple[int, ...] | None,
) -> None:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"x must be (rows, features) and y (rows,); got {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError("the data set has no rows")
    if len(feature_names) != x.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {x.shape[1]} features")
    if image_shape is not None and math.prod(image_shape) != x.shape[1]:
        raise ValueError(f"image shape {image_shape} does not hold {x.shape[1]} features")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    if task == "regression":
        if class_names:
            raise ValueError("a regression data set has no class names")
        if not np.isfinite(y.astype(np.float64)).all():
            raise ValueError("y contains NaN or infinite values")
        return
    if not class_names:
        raise ValueError("a classification data set needs class names")
    labels = y.astype(np.int64)
    if not np.array_equal(labels, y) or labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(f"classification y must hold class indices 0..{len(class_names) - 1}")


def _split_indices(
    y: np.ndarray, task: Task, spec: DatasetSpec, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train, validation and test: each holdout is round(rows * fraction), at least 1."""
    n = len(y)
    n_test = max(1, round(n * spec.test_split))
    n_val = max(1, round(n * spec.validation_split))
    if n - n_test - n_val < 1:
        raise ValueError(f"{n} rows cannot fill a training split beside {n_val} validation and {n_test} test rows")
    stratify = task == "classification"
    rest, test = _holdout(np.arange(n), y, n_test, seed, stratify)
    train, val = _holdout(rest, y, n_val, seed, stratify)
    return train, val, test


def _holdout(rows: np.ndarray, y: np.ndarray, size: int, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` into (kept, held out) with `size` rows held out."""
    labels = y[rows]
    counts = np.unique(labels, return_counts=True)[1]
    # scikit-learn can stratify only when each class has two rows and both sides have one per class.
    fits = counts.min() >= 2 and min(size, len(rows) - size) >= len(counts)
    kept, held_out = train_test_split(
        rows, test_size=size, random_state=seed, stratify=labels if stratify and fits else None
    )
    return kept, held_out
