"""Array and image uploads: an `.npz` file of arrays `x` and `y`, or a `.zip` of class folders of PNG or JPEG
images. Both arrive as zip archives, told apart by their members (an `.npz` holds `x.npy` and `y.npy`).

What keeps a hostile archive from costing more than a table would (each a 4xx naming the problem):
1. the archive's members are listed before any is read: a name that is absolute, climbs out with `..` or
   uses a drive or backslash is refused (nothing is ever extracted to disk, but such an archive is not one
   a user meant to send);
2. the sizes the members declare, uncompressed, may add up to at most `max_encoded_bytes`: a zip bomb is
   refused before it is inflated, and zipfile never gives more bytes than a member declares;
3. `.npz`: each array's header is read for its shape and dtype before its data; `x` (rows, features),
   (rows, height, width) or (rows, channels, height, width) of numbers, `y` one per row; no pickles;
4. images: each is opened for its size first, and one over `max_image_pixels` is refused before it is
   decoded; only PNG and JPEG are taken; every image is resized to `image_size` x `image_size`
   (RGB, or one channel with `grayscale`), so the decoded set is rows x channels x side² float32;
5. rows (`max_upload_rows`), classes (`max_categories`) and the decoded size (`max_encoded_bytes`) as for a
   table, checked before the matrix is allocated.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from service.datasets.parsing import Caps, Decoded, Encoded, TableError, check_encoded_size

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff")
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")  # what archivers add beside the images


@dataclass(frozen=True)
class ImageOptions:
    side: int  # every image is resized to side x side
    grayscale: bool
    max_pixels: int  # of one image as stored, before it is decoded


def is_archive(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06")  # a member, or an empty archive


def is_npz(path: Path) -> bool:
    """A zip archive of arrays `x` and `y` (or `x` alone, as rows to predict)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "x.npy" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def read_archive(
    path: Path, task: Literal["classification", "regression"], images: ImageOptions, caps: Caps
) -> Decoded:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise TableError(f"not a readable zip archive: {exc}") from exc
    with archive:
        members = checked_members(archive, caps)
        names = {member.filename for member in members}
        if {"x.npy", "y.npy"} <= names:
            return _npz(archive, task, caps)
        if task != "classification":
            raise TableError("a zip of images is a classification set: one folder per class", status=422)
        return _images(archive, members, images, caps)


def checked_members(archive: zipfile.ZipFile, caps: Caps) -> list[zipfile.ZipInfo]:
    """The archive's files, once their names and declared sizes are checked (steps 1 and 2)."""
    members = []
    for member in archive.infolist():
        name = member.filename
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or ".." in path.parts or ":" in path.parts[0]:
            raise TableError(f"the archive's member `{name}` would escape the archive", status=422)
        if not member.is_dir() and not any(part in name for part in IGNORED):
            members.append(member)
    declared = sum(member.file_size for member in members)
    if declared > caps.max_encoded_bytes:
        raise TableError(
            f"the archive expands to {declared} bytes, over the limit `max_encoded_bytes` of {caps.max_encoded_bytes}",
            status=413,
        )
    return members


def _npz(archive: zipfile.ZipFile, task: Literal["classification", "regression"], caps: Caps) -> Decoded:
    x_shape, x_dtype = _npy_header(archive, "x")
    y_shape, y_dtype = _npy_header(archive, "y")
    if len(x_shape) not in (2, 3, 4) or len(y_shape) != 1 or x_shape[0] != y_shape[0]:
        raise TableError(
            f"`x` must be (rows, features), (rows, height, width) or (rows, channels, height, width) and `y` "
            f"(rows,) with the same rows; got {list(x_shape)} and {list(y_shape)}",
            status=422,
        )
    if x_dtype.kind not in "biuf":
        raise TableError(f"`x` must hold numbers; its dtype is {x_dtype}", status=422)
    if y_dtype.kind not in "biufU":
        raise TableError(f"`y` must hold numbers or text; its dtype is {y_dtype}", status=422)
    rows = x_shape[0]
    if rows > caps.max_rows:
        raise TableError(f"{rows} rows, over the limit of {caps.max_rows} rows", status=413)
    if rows < 10:
        raise TableError(f"{rows} rows; at least 10 are needed to split train/validation/test", status=422)
    check_encoded_size(rows, math.prod(x_shape[1:]), caps)
    y = _target(_npy(archive, "y"), task, caps)
    x = _npy(archive, "x").reshape(rows, -1).astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise TableError("`x` holds NaN or infinite values", status=422)
    input_shape = None
    if len(x_shape) > 2:
        input_shape = [1, *x_shape[1:]] if len(x_shape) == 3 else list(x_shape[1:])
    return Decoded("npz", ["x", "y"], "y", _encoded(x, y), input_shape)


def _npy_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    try:
        with archive.open(f"{name}.npy") as file:
            version = npy.read_magic(file)
            if version not in readers:
                raise ValueError(f"format version {version} is not supported; save with numpy.savez")
            shape, _fortran, dtype = readers[version](file)
    except (ValueError, KeyError) as exc:
        raise TableError(f"`{name}.npy` is not a readable NumPy array: {exc}", status=422) from exc
    return tuple(shape), np.dtype(dtype)


def _npy(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(f"{name}.npy") as file:
        try:
            return np.lib.format.read_array(file, allow_pickle=False)
        except ValueError as exc:
            raise TableError(f"`{name}.npy` is not a readable NumPy array: {exc}", status=422) from exc


Target = tuple[np.ndarray, list[str], dict[str, int]]  # y, class names, rows per class


def _target(y: np.ndarray, task: Literal["classification", "regression"], caps: Caps) -> Target:
    import pyarrow as pa

    from service.datasets.encoding import encode_target

    return encode_target(pa.chunked_array([pa.array(y)]), "y", task, caps)


def _encoded(x: np.ndarray, target: Target, names: list[str] | None = None) -> Encoded:
    y, class_names, class_counts = target
    return Encoded(
        features=x,
        target=y,
        feature_names=names or [f"x{i}" for i in range(x.shape[1])],
        class_names=class_names,
        class_counts=class_counts,
        categorical_columns=[],
    )


def _images(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], options: ImageOptions, caps: Caps) -> Decoded:
    if not members:
        raise TableError("the archive holds no images", status=422)
    classes = [_class_of(member) for member in members]
    if len(members) > caps.max_rows:
        raise TableError(f"{len(members)} images, over the limit of {caps.max_rows} rows", status=413)
    channels = 1 if options.grayscale else 3
    shape = [channels, options.side, options.side]
    check_encoded_size(len(members), math.prod(shape), caps)
    target = _target(np.array(classes), "classification", caps)
    x = _pixels(archive, members, options)
    names = [f"c{c}_y{i}_x{j}" for c in range(channels) for i in range(options.side) for j in range(options.side)]
    return Decoded("zip", ["image", "folder"], "folder", _encoded(x, target, names), shape)


def read_images(path: Path, options: ImageOptions, caps: Caps) -> tuple[list[str], np.ndarray]:
    """Images to predict: one PNG or JPEG file, or a zip of them at any depth; their names and their rows,
    decoded as an uploaded set's are (steps 1, 2 and 4)."""
    with path.open("rb") as file:
        head = file.read(4)
    if not is_archive(head):
        return [path.name], _decoded(path.name, path.read_bytes(), options).reshape(1, -1)
    with zipfile.ZipFile(path) as archive:
        members = checked_members(archive, caps)
        for member in members:
            _check_image_name(member)
        if not 0 < len(members) <= caps.max_rows:
            raise TableError(f"{len(members)} images; send 1 to {caps.max_rows}", status=422)
        return [member.filename for member in members], _pixels(archive, members, options)


def _pixels(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], options: ImageOptions) -> np.ndarray:
    channels = 1 if options.grayscale else 3
    x = np.empty((len(members), channels * options.side**2), dtype=np.float32)
    for row, member in enumerate(members):
        x[row] = _decoded(member.filename, archive.read(member), options).reshape(-1)
    return x


def _check_image_name(member: zipfile.ZipInfo) -> PurePosixPath:
    path = PurePosixPath(member.filename)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise TableError(f"`{member.filename}` is not a PNG or JPEG image (.png, .jpg, .jpeg)", status=422)
    return path


def _class_of(member: zipfile.ZipInfo) -> str:
    path = _check_image_name(member)
    if len(path.parts) < 2:
        raise TableError(
            f"`{member.filename}` is not in a folder: put each class's images in a folder named after it", 422
        )
    return path.parts[-2]


def _decoded(name: str, data: bytes, options: ImageOptions) -> np.ndarray:
    """The image as (channels, side, side) floats in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    expected = IMAGE_SUFFIXES.get(PurePosixPath(name).suffix.lower())
    try:
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
            width, height = image.size
            if width * height > options.max_pixels:
                raise TableError(
                    f"`{name}` is {width} x {height} pixels, over the limit `max_image_pixels` of {options.max_pixels}",
                    status=413,
                )
            if expected is not None and image.format != expected:
                raise TableError(f"`{name}` is a {image.format} image named as {expected}", status=422)
            image.draft("L" if options.grayscale else "RGB", (options.side, options.side))  # JPEG: decode small
            converted = image.convert("L" if options.grayscale else "RGB")
            resized = converted.resize((options.side, options.side), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, zipfile.BadZipFile, Image.DecompressionBombError) as exc:
        raise TableError(f"`{name}` is not a readable PNG or JPEG image: {exc}", status=422) from exc
    pixels = np.asarray(resized, dtype=np.float32) / 255
    return pixels[None] if options.grayscale else pixels.transpose(2, 0, 1)
