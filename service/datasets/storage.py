"""How an encoded data set is kept in the artifact store: one safetensors file, metadata in its header."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import load, save

from service.artifacts import ArtifactStore, safetensors_metadata


@dataclass(frozen=True)
class StoredArrays:
    features: np.ndarray
    target: np.ndarray
    feature_names: list[str]
    class_names: list[str]


def key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/data.safetensors"


def save_arrays(store: ArtifactStore, dataset_id: str, arrays: StoredArrays) -> None:
    metadata = {"feature_names": json.dumps(arrays.feature_names), "class_names": json.dumps(arrays.class_names)}
    store.put(key(dataset_id), save({"features": arrays.features, "target": arrays.target}, metadata=metadata))


def load_arrays(store: ArtifactStore, dataset_id: str) -> StoredArrays:
    data = store.get(key(dataset_id))
    if data is None:
        raise FileNotFoundError(f"data set {dataset_id} is not in the artifact store")
    tensors = load(data)
    metadata = safetensors_metadata(data)
    return StoredArrays(
        tensors["features"],
        tensors["target"],
        json.loads(metadata["feature_names"]),
        json.loads(metadata["class_names"]),
    )
