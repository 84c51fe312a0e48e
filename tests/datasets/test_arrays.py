"""Array and image uploads through HTTP on real PostgreSQL: an npz of images and a zip of class folders are
described with their input shape, and each hostile archive (a zip bomb, paths that escape, a non-image, a
10⁶-class npz, mismatched shapes, a pickle, an image past the pixel budget) is a 4xx that names the problem
and leaves nothing on disk."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.settings import Settings
from tests.fixtures import tiny_spec


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def png(colour: tuple[int, int, int], size: tuple[int, int] = (12, 10), kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


def archive(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def class_folders(per_class: int = 6) -> bytes:
    members = {f"pets/red/{i}.png": png((200 + i, 0, 0)) for i in range(per_class)}
    members |= {f"pets/blue/{i}.jpg": png((0, 0, 200 + i), kind="JPEG") for i in range(per_class)}
    members["__MACOSX/pets/._red"] = b"resource fork"
    return archive(members)


def upload(client: TestClient, data: bytes, name: str = "data.zip", **form: Any) -> Any:
    fields = {"task": "classification", **form}
    return client.post("/v1/datasets", files={"file": (name, data)}, data=fields)


def nothing_left(settings: Settings) -> bool:
    """No upload file and no stored data set remain."""
    stored = [p for p in (settings.data_dir).rglob("*") if p.is_file() and "datasets" in p.parts]
    uploads = settings.data_dir / "uploads"
    return not stored and not (uploads.exists() and any(uploads.iterdir()))


def test_a_zip_of_class_folders_is_decoded_resized_and_admits_a_cnn_with_augmentation(client: TestClient) -> None:
    response = upload(client, class_folders(), image_size=8)
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "zip" and dataset["rows"] == 12 and dataset["input_shape"] == [3, 8, 8]
    assert dataset["class_counts"] == {"blue": 6, "red": 6} and dataset["target"] == "folder"
    assert len(dataset["feature_names"]) == 3 * 8 * 8
    gray = upload(client, class_folders(), image_size=6, grayscale="true").json()
    assert gray["input_shape"] == [1, 6, 6]
    cnn = tiny_spec(
        dataset={"id": dataset["id"]},
        model={"type": "cnn", "conv_layers": [{"filters": 2, "kernel_size": 3}], "hidden_layers": [4]},
        augmentation={"flip": True, "crop_padding": 1},
    )
    assert client.post("/v1/jobs", json=cnn).status_code == 202


def test_an_npz_of_images_or_rows_is_described_and_a_table_refuses_a_cnn(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    images = upload(client, npz(x=rng.random((20, 5, 5)), y=np.arange(20) % 2), "a.npz").json()
    assert images["format"] == "npz" and images["input_shape"] == [1, 5, 5] and images["columns"] == ["x", "y"]
    words = upload(client, npz(x=rng.random((20, 3)), y=np.array(["cat", "dog"] * 10)), "b.npz").json()
    assert words["input_shape"] is None and words["class_counts"] == {"cat": 10, "dog": 10}
    values = upload(client, npz(x=rng.random((20, 3)), y=rng.random(20)), "c.npz", task="regression")
    assert values.status_code == 201 and values.json()["task"] == "regression"
    cnn = tiny_spec(dataset={"id": words["id"]}, model={"type": "cnn", "conv_layers": [{"filters": 2}]})
    refused = client.post("/v1/jobs", json=cnn)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "model.type"


def test_a_table_still_needs_its_target(client: TestClient) -> None:
    response = client.post("/v1/datasets", files={"file": ("t.csv", b"a,b\n1,2\n")}, data={"task": "classification"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "target"


HOSTILE: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "zip bomb": (
        lambda: archive({"a/x.png": b"\0" * 300 * 2**20}, zipfile.ZIP_DEFLATED),
        413,
        "expands to 314572800 bytes, over the limit `max_encoded_bytes`",
    ),
    "escaping path": (lambda: archive({"../../etc/cron.d/x.png": png((1, 2, 3))}), 422, "would escape the archive"),
    "absolute path": (lambda: archive({"/tmp/x/a.png": png((1, 2, 3))}), 422, "would escape the archive"),
    "non-image": (
        lambda: archive({"red/a.png": png((1, 2, 3)), "red/notes.txt": b"hi"}),
        422,
        "`red/notes.txt` is not a PNG or JPEG image",
    ),
    "fake image": (
        lambda: archive({"red/a.png": b"not an image at all", "blue/b.png": png((1, 2, 3))}),
        422,
        "`red/a.png` is not a readable PNG or JPEG image",
    ),
    "huge image": (
        lambda: archive({"red/a.png": png((1, 2, 3), (5000, 4000)), "blue/b.png": png((1, 2, 3))}),
        413,
        "over the limit `max_image_pixels`",
    ),
    "million classes": (
        lambda: npz(x=np.zeros((10**6, 1), np.float32), y=np.arange(10**6)),
        422,
        "1000000 classes, over the limit `max_categories`",
    ),
    "mismatched shapes": (lambda: npz(x=np.zeros((20, 3)), y=np.zeros(19)), 422, "with the same rows"),
    "pickled objects": (
        lambda: npz(x=np.full((20, 2), {"a": 1}, dtype=object), y=np.zeros(20)),
        422,
        "`x` must hold numbers; its dtype is object",
    ),
    "pickle as npz": (
        lambda: archive({"x.npy": pickle.dumps([1, 2]), "y.npy": pickle.dumps([1])}),
        422,
        "`x.npy` is not a readable NumPy array",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_upload_is_a_4xx_that_names_it_and_leaves_nothing(
    case: str, client_with: Callable[..., TestClient], settings: Settings, tmp_path: Path
) -> None:
    make, status, detail = HOSTILE[case]
    with client_with(max_image_pixels=10**7) as client:
        response = upload(client, make())
        assert response.status_code == status, response.text
        assert detail in response.json()["detail"]
        assert client.get("/v1/datasets").json()["items"] == []
    assert nothing_left(settings)
