"""The artifact store: weights, checkpoints and uploaded data, by key. Keys are never user input: they are
built here, and only here (`job_prefix`, `weights_key`, …).

A local directory in the embedded mode; any S3-compatible object store in production
(`STEADYFIT_ARTIFACT_URL=s3://bucket/prefix`), so a job can resume on a worker on another machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlparse

from core.settings import Settings

CHUNK_BYTES = 2**20  # what a download holds in memory at a time


def job_prefix(job_id: str) -> str:
    """Everything a job leaves is under this prefix; the API lists it as the job's artifacts."""
    return f"jobs/{job_id}/"


def weights_key(job_id: str) -> str:
    """The kept weights of a finished job, with its model card in the safetensors metadata."""
    return job_prefix(job_id) + "weights.safetensors"


def pruned_weights_key(job_id: str) -> str:
    """The kept weights pruned to the sparsity the pruning report chose (workers/analyses/pruning.py)."""
    return job_prefix(job_id) + "weights-pruned.safetensors"


ONNX_FILE = "model.onnx"
# The exported graph's input (raw rows), output, and the metadata entry that describes them, as JSON.
ONNX_INPUT, ONNX_OUTPUT, ONNX_METADATA = "rows", "output", "steadyfit"


def onnx_key(job_id: str) -> str:
    """The kept model exported to ONNX, preprocessing inside (workers/training/export.py)."""
    return job_prefix(job_id) + ONNX_FILE


def checkpoint_key(job_id: str) -> str:
    """The training state after a job's last completed epoch, which a retry resumes from."""
    return job_prefix(job_id) + "checkpoint.safetensors"


def model_prefix(model_id: str) -> str:
    """Everything stored for a model (POST /v1/models, POST /v1/jobs/{id}/model) is under this prefix."""
    return f"models/{model_id}/"


def model_weights_key(model_id: str) -> str:
    return model_prefix(model_id) + "weights.safetensors"


def model_onnx_key(model_id: str) -> str:
    return model_prefix(model_id) + ONNX_FILE


def prediction_prefix(prediction_id: str) -> str:
    """A batch prediction's rows (`rows.npz`, as the API parsed them) and answers (`predictions.csv`)."""
    return f"predictions/{prediction_id}/"


def prediction_rows_key(prediction_id: str) -> str:
    return prediction_prefix(prediction_id) + "rows.npz"


def prediction_answers_key(prediction_id: str) -> str:
    return prediction_prefix(prediction_id) + "predictions.csv"


def dataset_prefix(dataset_id: str) -> str:
    """Everything stored for an uploaded data set is under this prefix."""
    return f"datasets/{dataset_id}/"


def dataset_key(dataset_id: str) -> str:
    return dataset_prefix(dataset_id) + "data.safetensors"


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OpenedArtifact:
    """An artifact being read: its size, and its bytes a chunk at a time (the source closes at the end)."""

    size: int
    chunks: Iterator[bytes]


def _chunks(source: Readable) -> Iterator[bytes]:
    try:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk
    finally:
        source.close()


class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes | bytearray) -> None:
        """Store atomically: a reader sees the old object or the new one, never half of one."""

    def get(self, key: str) -> bytes | None: ...

    def open(self, key: str) -> OpenedArtifact | None:
        """To send an artifact without holding it whole in memory; None when there is no such artifact."""
        ...

    def list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every artifact under a prefix, sorted by key."""
        ...

    def delete(self, prefix: str) -> None:
        """Remove every artifact under a prefix (none there is not an error)."""


def artifact_store(settings: Settings) -> ArtifactStore:
    if settings.artifact_url is None:
        return LocalArtifactStore(settings.resolved_artifact_dir)
    url = urlparse(settings.artifact_url)
    if url.scheme != "s3" or not url.netloc:
        raise ValueError(f"STEADYFIT_ARTIFACT_URL must look like s3://bucket/prefix, not {settings.artifact_url!r}")
    return S3ArtifactStore(url.netloc, url.path.strip("/"), endpoint_url=settings.s3_endpoint_url)


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes | bytearray) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def open(self, key: str) -> OpenedArtifact | None:
        # The open file keeps the version it opened (a checkpoint is replaced each epoch), so the size
        # sent as Content-Length stays true to the bytes that follow.
        try:
            file = self._path(key).open("rb")
        except FileNotFoundError:
            return None
        return OpenedArtifact(os.fstat(file.fileno()).st_size, _chunks(file))

    def list(self, prefix: str) -> list[tuple[str, int]]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return [
            (str(p.relative_to(self.root.resolve())), p.stat().st_size)
            for p in sorted(base.rglob("*"))
            if p.is_file() and not p.name.startswith(".tmp-")
        ]

    def delete(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


class S3ArtifactStore:
    """Objects under `prefix` in an S3 bucket (AWS, MinIO, …). A PUT is atomic in S3 already.

    Credentials come the usual AWS ways (environment, profile, instance role).
    """

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        import boto3  # only deployments with an object store pay for importing it

        self.bucket, self.prefix = bucket, f"{prefix}/" if prefix else ""
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, key: str, data: bytes | bytearray) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        data: bytes = response["Body"].read()
        return data

    def open(self, key: str) -> OpenedArtifact | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        return OpenedArtifact(response["ContentLength"], _chunks(response["Body"]))

    def list(self, prefix: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:
            found.extend((item["Key"].removeprefix(self.prefix), item["Size"]) for item in page.get("Contents", []))
        return sorted(found)

    def delete(self, prefix: str) -> None:
        for key, _size in self.list(prefix):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


MODEL_CARD = "steadyfit"  # the metadata entry of a job's weights file that holds its model card, as JSON


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file: its layout is an 8-byte little-endian header size, then JSON."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata: dict[str, str] = header.get("__metadata__") or {}
    return metadata


SAFETENSORS_DTYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
MAX_SAFETENSORS_HEADER = 100 * 2**20  # as the safetensors library's own bound


class NotSafetensors(ValueError):
    """The file is not a well-formed safetensors file; the message says where it fails."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


def safetensors_tensors(file: BinaryIO, size: int) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The tensors a safetensors file declares (name: dtype and shape) and its metadata, checked for form
    without reading the tensors' bytes: the header is JSON, and the tensors' byte ranges fit their dtypes and
    shapes, follow each other without gaps or overlaps, and end where the file ends. Nothing is unpickled."""
    length = int.from_bytes(file.read(8), "little")
    if size < 8 or not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
        raise NotSafetensors("it does not start with the 8-byte size of a JSON header (is it a pickle?)")
    try:
        header = json.loads(file.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotSafetensors(f"its header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise NotSafetensors("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    tensors, ranges = {}, []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            width = SAFETENSORS_DTYPES[dtype]
        except (KeyError, TypeError, ValueError):
            raise NotSafetensors(f"tensor `{name}` is not described as safetensors describes one") from None
        well_formed = all(isinstance(n, int) and n >= 0 for n in (*shape, begin, end))
        if not well_formed or end - begin != width * math.prod(shape):
            raise NotSafetensors(f"tensor `{name}`: its byte range does not fit its dtype and shape")
        tensors[name] = TensorInfo(dtype, shape)
        ranges.append((begin, end))
    position = 0
    for begin, end in sorted(ranges):
        if begin != position:
            raise NotSafetensors("the tensors' byte ranges leave gaps or overlap")
        position = end
    if 8 + length + position != size:
        raise NotSafetensors(f"the tensors end at byte {8 + length + position}, the file at {size}")
    return tensors, {str(k): str(v) for k, v in metadata.items()}
