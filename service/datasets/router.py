"""HTTP routes for /v1/datasets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Path, Query, Request, UploadFile, status

from core.artifacts import ArtifactStore
from core.datasets import storage
from core.tenants.limits import limits_for
from service.datasets import service
from service.datasets.arrays import ImageOptions
from service.datasets.parsing import Imputation
from service.datasets.schemas import DatasetList, DatasetRead
from service.deps import ArtifactsDep, SessionDep, SettingsDep
from service.errors import IDEMPOTENCY_CONFLICT, Problem
from service.idempotency.deps import IdempotentCreateDep
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No data set with this id."}}
DatasetId = Annotated[str, Path(description="The data set's `id`, as POST /v1/datasets returned it.")]
# A small table as it would be uploaded (Swagger UI offers a file picker for `file` instead).
EXAMPLE_UPLOAD = {
    "file": "x1,x2,colour,label\n"
    "0,0,red,no\n1,3,blue,yes\n2,6,red,yes\n3,9,blue,no\n4,1,red,yes\n5,4,blue,yes\n"
    "6,7,red,no\n0,10,blue,yes\n1,2,red,yes\n2,5,blue,no\n3,8,red,yes\n4,0,blue,yes\n",
    "target": "label",
    "task": "classification",
    "name": "colours",
    "impute": "none",
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="upload_dataset",
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"example": EXAMPLE_UPLOAD}}}},
    responses={
        400: {"model": Problem, "description": "The file does not parse; `detail` says where."},
        409: IDEMPOTENCY_CONFLICT,
        413: {
            "model": Problem,
            "description": "The file is over the size or row limit, expands past `max_encoded_bytes` (a zip bomb), "
            "holds an image over `max_image_pixels`, or is past your storage quota.",
        },
        422: {
            "model": Problem,
            "description": "The upload cannot be used (missing values, no such target, too many columns or "
            "distinct text values, arrays of the wrong shape, an archive member that is not an image or whose "
            "path escapes the archive, …).",
        },
    },
)
def upload_dataset(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    create_once: IdempotentCreateDep,
    file: Annotated[
        UploadFile,
        File(
            description="A CSV file with a header row, a Parquet file, an `.npz` of arrays `x` (rows, features), "
            "(rows, height, width) or (rows, channels, height, width) and `y` (rows,), or a `.zip` of class "
            "folders of PNG or JPEG images (`cats/1.png`, `dogs/7.jpg`)."
        ),
    ],
    task: Annotated[Literal["classification", "regression"], Form(description="What to predict.")],
    target: Annotated[
        str | None,
        Form(min_length=1, max_length=200, description="The column to predict: needed for a table only."),
    ] = None,
    name: Annotated[str | None, Form(max_length=200, description="A label for people.")] = None,
    impute: Annotated[
        Imputation, Form(description="How to fill missing feature values; `none` makes them an error.")
    ] = "none",
    image_size: Annotated[
        int,
        Form(ge=4, le=256, description="A zip of images: each is resized to this many pixels square."),
    ] = 32,
    grayscale: Annotated[bool, Form(description="A zip of images: one channel instead of RGB.")] = False,
) -> DatasetRead:
    """Upload a table, arrays or images to train on; the format is read from the content.

    A table's text columns are one-hot encoded. Images and image-shaped arrays train a `cnn` and take
    the image augmentations."""
    store: ArtifactStore = request.app.state.artifacts
    # Starlette has spooled the body (in memory up to 1 MiB, then to a temporary file); it is copied a chunk
    # at a time to a file of our own. One upload at a time parses in this process; one that waits for its
    # turn has not yet taken a database connection.
    with storage.received(file.file, settings.data_dir / "uploads") as received, request.app.state.parsing:
        limits = limits_for(session, settings, principal.owner)
        dataset = create_once(
            "datasets",
            (received.checksum, file.filename, name, target, task, impute, image_size, grayscale),
            create=lambda: service.upload(
                session,
                store,
                owner=principal.owner,
                received=received,
                filename=file.filename,
                name=name,
                target=target,
                task=task,
                impute=impute,
                images=ImageOptions(image_size, grayscale, settings.max_image_pixels),
                limits=limits,
                caps=service.caps(settings, limits),
            ),
            load=lambda dataset_id: service.get(session, dataset_id, principal),
        )
    return DatasetRead.model_validate(dataset)


@router.get("", operation_id="list_datasets")
def list_datasets(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> DatasetList:
    """List your uploaded data sets (an admin: everyone's), newest first."""
    return service.list_datasets(session, principal, limit=limit, cursor=cursor)


@router.get("/{dataset_id}", operation_id="get_dataset", responses=NOT_FOUND)
def get_dataset(dataset_id: DatasetId, session: SessionDep, principal: PrincipalDep) -> DatasetRead:
    """A data set's rows, columns, task, class counts and checksum."""
    return DatasetRead.model_validate(service.get(session, dataset_id, principal))


@router.delete(
    "/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_dataset", responses=NOT_FOUND
)
def delete_dataset(
    dataset_id: DatasetId,
    session: SessionDep,
    store: ArtifactsDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
) -> None:
    """Delete a data set and its stored arrays; jobs that already loaded it finish, later ones fail."""
    prefix = service.delete(session, dataset_id, principal)
    background.add_task(store.delete, prefix)  # after the commit: a rolled-back delete keeps its file
