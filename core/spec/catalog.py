"""The data-set catalog: every built-in and synthetic data set a spec may name, one entry each.

Spec validation (job.py: the names, their descriptions, what each set accepts, which allow a `cnn`), the
model-size quotas (core/jobs/quotas.py) and the worker's loading (workers/training/data.py) all read an
entry, so a new data set is one entry here and nothing else. No torch, and scikit-learn only inside the
loaders: the API process reads this catalog and never loads either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    import numpy as np

    from core.spec.job import DatasetSpec

Task = Literal["classification", "regression"]

# What a synthetic set takes from the spec when the spec leaves it out.
DEFAULT_ROWS = 1000
DEFAULT_FEATURES = 20
DEFAULT_CLASSES = 2
DEFAULT_NOISE = 0.1


class Draw(NamedTuple):
    """What a loader is asked for, every value resolved: a generator's seed is the spec's, else the training seed."""

    rows: int
    features: int
    classes: int  # 0 for regression
    noise: float
    seed: int


class Loaded(NamedTuple):
    """A data set as its loader returns it, before any split or scaling."""

    x: np.ndarray  # (rows, features)
    y: np.ndarray  # (rows,): class indices into class_names, or regression targets
    feature_names: list[str]
    class_names: list[str]  # empty for regression


@dataclass(frozen=True)
class Entry:
    """One data set. A synthetic set (no `rows`) takes from the spec whatever it does not fix here."""

    task: Task
    loader: Callable[[Draw], Loaded]
    input_shape: tuple[int, ...] | None  # None: (the spec's n_features,)
    n_classes: int | None  # None: regression, or the spec's n_classes for a synthetic classification set
    rows: int | None = None  # None: synthetic, the spec's n_samples
    image: bool = False  # inputs are (channels, height, width) images, so a `cnn` may train on it

    @property
    def synthetic(self) -> bool:
        return self.rows is None

    @property
    def takes_features(self) -> bool:
        return self.synthetic and self.input_shape is None

    @property
    def takes_classes(self) -> bool:
        return self.synthetic and self.task == "classification" and self.n_classes is None

    def input_shape_for(self, spec: DatasetSpec) -> tuple[int, ...]:
        return self.input_shape or (spec.n_features or DEFAULT_FEATURES,)

    def classes_for(self, spec: DatasetSpec) -> int:
        """Classes of the set `spec` asks for; 0 for regression, as the engine and the quotas count them."""
        if self.task == "regression":
            return 0
        return self.n_classes or spec.n_classes or DEFAULT_CLASSES

    def rows_for(self, spec: DatasetSpec) -> int:
        return self.rows or spec.n_samples or DEFAULT_ROWS

    def load(self, spec: DatasetSpec, seed: int) -> Loaded:
        """The set `spec` asks for; a generator draws with `spec.seed` when given, else `seed` (training's)."""
        noise = DEFAULT_NOISE if spec.noise is None else spec.noise
        features = math.prod(self.input_shape_for(spec))
        draw = Draw(
            self.rows_for(spec), features, self.classes_for(spec), noise, seed if spec.seed is None else spec.seed
        )
        return self.loader(draw)


def _scikit_learn(function: str, **options: Any) -> Callable[[Draw], Loaded]:
    """A loader of one of scikit-learn's bundled sets (`sklearn.datasets.<function>`), which come with names."""

    def load(_: Draw) -> Loaded:
        from sklearn import datasets

        bunch = getattr(datasets, function)(**options)
        class_names = [str(c) for c in bunch.get("target_names", [])]
        return Loaded(bunch.data, bunch.target, list(bunch.feature_names), class_names)

    return load


def _generated(x: np.ndarray, y: np.ndarray, classes: int) -> Loaded:
    return Loaded(x, y, [f"x{i}" for i in range(x.shape[1])], [str(c) for c in range(classes)])


def _classification(draw: Draw) -> Loaded:
    """make_classification with half the features informative, a quarter redundant, the rest noise.

    One cluster per class, so the classes must fit in 2**n_informative; `noise` is the fraction of labels
    assigned at random (scikit-learn's flip_y).
    """
    from sklearn.datasets import make_classification

    if draw.noise > 1:
        raise ValueError(f"synthetic `classification` takes noise in [0, 1] (label-flip fraction), got {draw.noise}")
    needed = math.ceil(math.log2(draw.classes))
    if needed > draw.features:
        raise ValueError(f"{draw.classes} classes need at least {needed} features, got n_features={draw.features}")
    n_informative = max(draw.features // 2, needed)
    x, y = make_classification(
        n_samples=draw.rows,
        n_features=draw.features,
        n_informative=n_informative,
        n_redundant=(draw.features - n_informative) // 2,
        n_classes=draw.classes,
        n_clusters_per_class=1,
        flip_y=draw.noise,
        random_state=draw.seed,
    )
    return _generated(x, y, draw.classes)


def _regression(draw: Draw) -> Loaded:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=draw.rows, n_features=draw.features, noise=draw.noise, random_state=draw.seed)
    return _generated(x, y, 0)


def _moons(draw: Draw) -> Loaded:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=draw.rows, noise=draw.noise, random_state=draw.seed)
    return _generated(x, y, draw.classes)


def _circles(draw: Draw) -> Loaded:
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=draw.rows, noise=draw.noise, factor=0.5, random_state=draw.seed)
    return _generated(x, y, draw.classes)


SHAPES = ("circle", "square", "triangle")
SHAPE_SIZE = 32


def _shapes(draw: Draw) -> Loaded:
    """32 x 32 RGB images of one circle, square or triangle each (the class), of a random size (10 to 20 pixels
    across), position, background and colour (each channel 0.35 to 0.65 from the background's, modulo 1),
    with Gaussian pixel noise of standard deviation `noise` (0.1 by default), clipped to [0, 1]. The same seed
    draws the same images; the classes take turns, so they are balanced. Pixels are channel-first, flattened
    as the network takes them."""
    import numpy as np

    rng = np.random.default_rng(draw.seed)
    n, side = draw.rows, SHAPE_SIZE
    labels = np.arange(n) % len(SHAPES)
    rng.shuffle(labels)
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    images = np.empty((n, 3, side, side), dtype=np.float32)
    for i, label in enumerate(labels):
        half = rng.uniform(5, 10)  # half the shape's width
        cy, cx = rng.uniform(half, side - half, size=2)
        dy, dx = rows - cy, cols - cx
        if label == 0:
            inside = dy**2 + dx**2 <= half**2
        elif label == 1:
            inside = (np.abs(dy) <= half * 0.8) & (np.abs(dx) <= half * 0.8)
        else:  # apex up: below the apex and within the two edges that widen to the base
            inside = (dy <= half * 0.8) & (np.abs(dx) <= (dy + half) / 2)
        background = rng.uniform(0, 1, size=(3, 1, 1)).astype(np.float32)
        colour = (background + rng.uniform(0.35, 0.65, size=(3, 1, 1)).astype(np.float32)) % 1  # stands out
        images[i] = np.where(inside, colour, background)
    images += rng.normal(0, draw.noise, size=images.shape).astype(np.float32)
    x = np.clip(images, 0, 1).reshape(n, -1)
    return Loaded(x, labels, [f"pixel{i}" for i in range(x.shape[1])], list(SHAPES))


# In the order the API lists them: built-ins, then generators.
CATALOG: dict[str, Entry] = {
    "digits": Entry("classification", _scikit_learn("load_digits"), (1, 8, 8), 10, rows=1797, image=True),
    "iris": Entry("classification", _scikit_learn("load_iris"), (4,), 3, rows=150),
    "wine": Entry("classification", _scikit_learn("load_wine"), (13,), 3, rows=178),
    "breast_cancer": Entry("classification", _scikit_learn("load_breast_cancer"), (30,), 2, rows=569),
    # Raw units: steadyfit standardizes with training-split statistics itself.
    "diabetes": Entry("regression", _scikit_learn("load_diabetes", scaled=False), (10,), None, rows=442),
    "classification": Entry("classification", _classification, None, None),
    "regression": Entry("regression", _regression, None, None),
    "moons": Entry("classification", _moons, (2,), 2),
    "circles": Entry("classification", _circles, (2,), 2),
    "shapes": Entry("classification", _shapes, (3, SHAPE_SIZE, SHAPE_SIZE), len(SHAPES), image=True),
}


def names(which: Callable[[Entry], bool] = lambda entry: True) -> list[str]:
    """The catalog's names whose entry `which` picks, in the catalog's order."""
    return [name for name, entry in CATALOG.items() if which(entry)]
