"""Data for the engine: built-in and synthetic sets, split into train/validation/test and standardized.

Everything here is local: the built-in sets ship inside scikit-learn, the synthetic ones are generated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

from core.spec.job import BUILTIN_DATASETS, SYNTHETIC_DATASETS, DatasetSpec, Task

DEFAULT_N_SAMPLES = 1000
DEFAULT_N_FEATURES = 20
DEFAULT_N_CLASSES = 2
DEFAULT_NOISE = 0.1
DIGITS_SHAPE = (1, 8, 8)

_BUILTIN_LOADERS: dict[str, Callable[[], Any]] = {
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    # Raw units: steadyfit standardizes with training-split statistics itself.
    "diabetes": lambda: datasets.load_diabetes(scaled=False),
}


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


def load_dataset(spec: DatasetSpec, seed: int) -> PreparedData:
    """Load a built-in set or generate a synthetic one, then split and standardize it with `seed`."""
    if spec.name is None:
        raise ValueError("an uploaded data set (`id`) is read by the caller and passed to prepare_arrays")
    if spec.name in BUILTIN_DATASETS:
        return _load_builtin(spec, seed)
    return _generate(spec, seed)


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


def _load_builtin(spec: DatasetSpec, seed: int) -> PreparedData:
    assert spec.name is not None
    bunch = _BUILTIN_LOADERS[spec.name]()
    task = BUILTIN_DATASETS[spec.name]
    class_names = [str(c) for c in bunch.target_names] if task == "classification" else []
    image_shape = DIGITS_SHAPE if spec.name == "digits" else None
    return prepare_arrays(
        bunch.data, bunch.target, task, spec, seed, list(bunch.feature_names), class_names, image_shape
    )


def _generate(spec: DatasetSpec, seed: int) -> PreparedData:
    """A synthetic set; the generator uses `spec.seed` when given, else the training seed."""
    assert spec.name is not None
    n_samples = DEFAULT_N_SAMPLES if spec.n_samples is None else spec.n_samples
    n_features = DEFAULT_N_FEATURES if spec.n_features is None else spec.n_features
    noise = DEFAULT_NOISE if spec.noise is None else spec.noise
    n_classes = DEFAULT_N_CLASSES if spec.n_classes is None else spec.n_classes  # moons, circles: 2
    rng = seed if spec.seed is None else spec.seed
    if spec.name == "classification":
        x, y = _make_classification(n_samples, n_features, n_classes, noise, rng)
    elif spec.name == "regression":
        x, y = datasets.make_regression(n_samples=n_samples, n_features=n_features, noise=noise, random_state=rng)
    elif spec.name == "moons":
        x, y = datasets.make_moons(n_samples=n_samples, noise=noise, random_state=rng)
    else:
        x, y = datasets.make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=rng)
    task = SYNTHETIC_DATASETS[spec.name]
    class_names = [str(c) for c in range(n_classes)] if task == "classification" else []
    feature_names = [f"x{i}" for i in range(x.shape[1])]
    return prepare_arrays(x, y, task, spec, seed, feature_names, class_names)


def _make_classification(
    n_samples: int, n_features: int, n_classes: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """make_classification with half the features informative, a quarter redundant, the rest noise.

    One cluster per class, so n_classes must fit in 2**n_informative; `noise` is the fraction of labels
    assigned at random (scikit-learn's flip_y).
    """
    if noise > 1:
        raise ValueError(f"synthetic `classification` takes noise in [0, 1] (label-flip fraction), got {noise}")
    needed = math.ceil(math.log2(n_classes))
    if needed > n_features:
        raise ValueError(f"{n_classes} classes need at least {needed} features, got n_features={n_features}")
    n_informative = max(n_features // 2, needed)
    return datasets.make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=(n_features - n_informative) // 2,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=noise,
        random_state=seed,
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
