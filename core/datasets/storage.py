"""Where an upload is kept: the file as it arrives in a temporary file under the data directory, and the
encoded data set in the artifact store, as one safetensors file with its metadata in the header."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from safetensors.numpy import load

from core.artifacts import ArtifactStore, dataset_key, safetensors_metadata

CHUNK = 2**20
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}


@dataclass(frozen=True)
class StoredArrays:
    features: np.ndarray
    target: np.ndarray
    feature_names: list[str]
    class_names: list[str]


@dataclass(frozen=True)
class Received:
    path: Path
    size: int
    checksum: str  # "sha256:" and the hex digest

    def head(self) -> bytes:
        with self.path.open("rb") as file:
            return file.read(4096)


@contextmanager
def received(source: BinaryIO, directory: Path) -> Iterator[Received]:
    """The upload copied to a file of its own, a chunk at a time, with its size and digest; removed afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=directory, prefix="upload-") as file:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            file.write(chunk)
        file.flush()
        yield Received(Path(file.name), file.tell(), "sha256:" + digest.hexdigest())


def serialized(arrays: StoredArrays) -> bytearray:
    """The file that `store.put(dataset_key(dataset_id), ...)` keeps, in safetensors' layout: an 8-byte little-endian
    header size, the JSON header, then each array's bytes, row-major.

    Written here rather than by `safetensors.numpy.save`, which holds the file twice (once in Rust, once as
    Python bytes): each array is copied straight into one buffer, whatever its memory order.
    """
    tensors = {"features": arrays.features, "target": arrays.target}
    header: dict[str, Any] = {
        "__metadata__": {
            "feature_names": json.dumps(arrays.feature_names),
            "class_names": json.dumps(arrays.class_names),
        }
    }
    offset = 0
    for name, array in tensors.items():
        header[name] = {
            "dtype": DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # the arrays start 8-byte aligned
    start = 8 + len(encoded)
    data = bytearray(start + offset)
    data[:start] = len(encoded).to_bytes(8, "little") + encoded
    for name, array in tensors.items():
        begin = start + header[name]["data_offsets"][0]
        np.frombuffer(data, dtype=array.dtype.newbyteorder("<"), count=array.size, offset=begin).reshape(array.shape)[
            ...
        ] = array
    return data


def load_arrays(store: ArtifactStore, dataset_id: str) -> StoredArrays:
    data = store.get(dataset_key(dataset_id))
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
