"""ONNX models loaded for predictions: one onnxruntime session per model, loaded on first use and kept in a
least-recently-used cache bounded in bytes (`PREDICT_CACHE_MIB`), so an API process answers without torch.

A model's size in the cache is its file's size times two: onnxruntime holds the weights once as initializers
and once in its own layout for the CPU kernels. Sessions run on one thread each: a request is small, and the
API's thread pool already runs several at once.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.artifacts import ONNX_INPUT, ONNX_METADATA, ONNX_OUTPUT

if TYPE_CHECKING:
    import onnxruntime


@dataclass(frozen=True)
class Signature:
    """What a model takes and gives, from its `steadyfit` metadata."""

    task: str
    feature_names: list[str]
    class_names: list[str]
    input_shape: tuple[int, ...]
    feature_mean: np.ndarray  # the training split's, for the missing values of an imputed data set
    categorical_columns: list[str] = field(default_factory=list)
    imputation: str = "none"

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Signature:
        return cls(
            task=metadata["task"],
            feature_names=list(metadata["feature_names"]),
            class_names=list(metadata["class_names"]),
            input_shape=tuple(metadata["input_shape"]),
            feature_mean=np.asarray(metadata["feature_mean"], dtype=np.float32),
            categorical_columns=list(metadata.get("categorical_columns", [])),
            imputation=metadata.get("imputation", "none"),
        )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


@dataclass(frozen=True)
class Predictor:
    session: onnxruntime.InferenceSession
    signature: Signature
    size: int  # what it counts for in the cache, in bytes

    @classmethod
    def load(cls, model: bytes) -> Predictor:
        import onnxruntime  # the first prediction pays for it, not the API's start

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        metadata = json.loads(session.get_modelmeta().custom_metadata_map[ONNX_METADATA])
        return cls(session, Signature.from_metadata(metadata), 2 * len(model))

    def run(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) or values (n,) for raw rows (n, features)."""
        answer: np.ndarray = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: rows})[0]
        return answer


class PredictorCache:
    """Predictors by key, the least recently used dropped first once their sizes pass `capacity` bytes. A model
    larger than the whole capacity is loaded for its request and not kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Predictor]) -> Predictor:
        with self._lock:
            predictor = self._items.get(key)
            if predictor is not None:
                self._items.move_to_end(key)
                return predictor
        predictor = load()  # outside the lock: another model's requests go on meanwhile
        with self._lock:
            if predictor.size <= self.capacity:
                self._items[key] = predictor
                self._items.move_to_end(key)
                while sum(item.size for item in self._items.values()) > self.capacity:
                    self._items.popitem(last=False)
        return predictor
