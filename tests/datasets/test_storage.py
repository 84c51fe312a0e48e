"""How an encoded data set is stored: what safetensors reads back is exactly what was encoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.artifacts import LocalArtifactStore, dataset_key
from core.datasets import storage


@pytest.mark.parametrize("target", [np.array([0, 2, 1], dtype=np.int64), np.array([0.5, -1, 2], dtype=np.float32)])
def test_the_file_is_safetensors_whatever_the_matrix_memory_order(target: np.ndarray, tmp_path: Path) -> None:
    features = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    arrays = storage.StoredArrays(features, target, ["a", "b", "c=x", "c=y"], ["0", "1", "2"])
    store = LocalArtifactStore(tmp_path)

    store.put(dataset_key("d1"), storage.serialized(arrays))
    read = storage.load_arrays(store, "d1")

    np.testing.assert_array_equal(read.features, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    assert read.features.dtype == np.float32 and read.target.dtype == target.dtype
    np.testing.assert_array_equal(read.target, target)
    assert (read.feature_names, read.class_names) == (["a", "b", "c=x", "c=y"], ["0", "1", "2"])
