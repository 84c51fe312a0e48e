"""The errors that the core raises and the API answers: each carries the HTTP status it is answered with.

The API turns them into RFC 9457 problem details (service/errors.py); a worker that meets one (a sweep's
trial that may not run) logs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from core.db.pagination import InvalidCursor


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `model.dropout`.")
    message: str = Field(description="What is wrong with it, and how to fix it where that can be said.")
    type: str = Field(description="A machine-readable error kind, e.g. `less_than`, `extra_forbidden`.")


class ApiError(Exception):
    """An error with an HTTP status that handlers turn into problem details."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        detail: str,
        errors: list[FieldError] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        if status is not None:
            self.status = status


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND


class Conflict(ApiError):
    status = HTTPStatus.CONFLICT


class TooManyJobs(ApiError):
    """A quota of jobs is full: 429, with the limit and its value named and a Retry-After."""

    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, setting: str, limit: int, what: str, retry_after_seconds: int) -> None:
        super().__init__(
            f"{what}: the limit `{setting}` is {limit}; retry later",
            headers={"Retry-After": str(retry_after_seconds)},
        )


class InvalidSpec(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(f"{field}: {message}", [FieldError(field=field, message=message, type=kind)])


@contextmanager
def invalid_cursor_is_422() -> Iterator[None]:
    try:
        yield
    except InvalidCursor as exc:
        raise InvalidSpec("cursor", str(exc), "invalid_cursor") from exc


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as a dotted field path, without the request part or union member names."""
    parts = [str(p) for p in loc]
    if len(parts) == 2 and parts[0] == "header":
        return parts[1]  # a header's name, hyphens and all
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(p for p in parts if not _is_union_tag(p)) or "body"


def _is_union_tag(part: str) -> bool:
    """pydantic names the union member it tried in the path (`float`, `list[...]`, `LossSpec`): not a field."""
    return part in {"float", "int", "str", "bool"} or part[:1].isupper() or any(c in part for c in "[-")


def invalid_fields(exc: ValidationError, *prefix: str) -> ApiError:
    """A 422 naming each field a validation found wrong, under `prefix` (e.g. `options`, `model`)."""
    errors = [
        FieldError(field=field_path([*prefix, *e["loc"]]), message=e["msg"], type=e["type"]) for e in exc.errors()
    ]
    return ApiError("; ".join(f"{e.field}: {e.message}" for e in errors), errors, status=422)
