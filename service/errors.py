"""One error format for every response: RFC 9457 problem details (application/problem+json).

Validation errors list each offending field as a dotted path, and say how to fix what pydantic's words do
not: the closest allowed name to an unknown field, where malformed JSON breaks (line and column), the
Content-Type a body needs. No stack trace ever leaves the server.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import UnionType
from typing import Annotated, Any, TypeGuard, Union, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from core.errors import ApiError, FieldError, field_path
from service.request_id import HEADER as REQUEST_ID_HEADER
from service.request_id import current as current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="A URI identifying the problem kind.")
    title: str = Field(description="A short summary of the problem kind.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for people.")
    errors: list[FieldError] | None = Field(None, description="Validation errors, one per field.")
    request_id: str | None = Field(None, description="The request's `X-Request-ID`, to find it in the logs.")


class Unauthorized(ApiError):
    """No key, or one the server does not know: 401, with the scheme to use."""

    status = HTTPStatus.UNAUTHORIZED

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """A key the server knows but that may not do this: revoked, or not an admin's."""

    status = HTTPStatus.FORBIDDEN


class TooManyStreams(ApiError):
    """A caller's event streams are at their cap: 429, with the limit named and a Retry-After."""

    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"{limit} event streams are open already: the limit `max_streams_per_owner` is {limit}; close one "
            "or retry later",
            headers={"Retry-After": str(retry_after_seconds)},
        )


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "No API key, or an unknown one (send `Authorization: Bearer <key>`).",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}},
    },
    403: {
        "model": Problem,
        "description": "The API key was revoked, or this route needs an admin's key; on a server without keys, a "
        "browser sent this request from another site.",
    },
}
# What any /v1 request may meet before its route runs (service/limits.py, service/rate_limits.py).
REQUEST_LIMITS: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "The body is over `MAX_BODY_BYTES` (an upload: `MAX_UPLOAD_BYTES`)."},
    429: {
        "model": Problem,
        "description": "Too many requests from this API key or client address; see `Retry-After`.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}
IDEMPOTENCY_CONFLICT: dict[str, Any] = {
    "model": Problem,
    "description": "The `Idempotency-Key` was already used with a different body.",
}
TOO_MANY_JOBS: dict[str, Any] = {
    "model": Problem,
    "description": "Too many jobs are queued or running, or too many requests were made; `detail` names the "
    "limit; see `Retry-After`.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}

TOO_MANY_STREAMS: dict[str, Any] = {
    "model": Problem,
    "description": "This caller has `max_streams_per_owner` streams open already; see `Retry-After`.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def problem(
    status: int, detail: str, errors: list[FieldError] | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    request_id = current_request_id()
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors, request_id=request_id)
    headers = dict(headers or {})
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id  # also on the errors answered outside the middleware (500s)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_errors(request: Request, exc: RequestValidationError) -> list[FieldError]:
    return [_field_error(request, exc, err) for err in exc.errors()]


def _field_error(request: Request, exc: RequestValidationError, err: Mapping[str, Any]) -> FieldError:
    """pydantic's error, with what the client can do about it where pydantic's words do not say."""
    loc, kind, message = tuple(err.get("loc", ())), err["type"], err.get("msg", "invalid")
    if kind == "json_invalid":
        return FieldError(field="body", message=_json_position(exc.body, loc[-1], err), type=kind)
    if kind == "extra_forbidden" and loc[:1] == ("body",):
        message += _did_you_mean(request, loc)
    elif loc == ("body",) and isinstance(exc.body, bytes):  # FastAPI leaves a body it did not read as JSON as bytes
        sent = request.headers.get("content-type")
        message = "the body must be JSON, sent with the header `Content-Type: application/json` " + (
            f"(this request's is `{sent}`)" if sent else "(this request has none)"
        )
    return FieldError(field=field_path(loc), message=message, type=kind)


def _json_position(body: Any, offset: Any, err: Mapping[str, Any]) -> str:
    """Where the JSON stops parsing, as line and column (the error carries only a character offset)."""
    reason = err.get("ctx", {}).get("error", err.get("msg", "invalid JSON"))
    if not (isinstance(body, str) and isinstance(offset, int)):
        return f"invalid JSON: {reason}"
    parsed = json.JSONDecodeError(reason, body, offset)  # works out the line and column
    return f"invalid JSON at line {parsed.lineno}, column {parsed.colno}: {reason}"


def _did_you_mean(request: Request, loc: tuple[Any, ...]) -> str:
    """ "; did you mean `name`?" with the closest field allowed where the unknown one was sent, or ""."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None:
        return ""
    names = _field_names(body_field.field_info.annotation, loc[1:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f"; did you mean `{close[0]}`?" if close else ""


def _field_names(annotation: Any, path: Sequence[Any]) -> list[str]:
    """The field names accepted at `path` (the middle of a pydantic error location) inside `annotation`."""
    types = _members(annotation)
    for part in path:
        types = [found for tp in types for found in _step(tp, part)]
    return sorted({name for tp in types if _is_model(tp) for name in tp.model_fields})


def _members(annotation: Any) -> list[Any]:
    """A type with `Annotated`, optional and union taken apart."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _step(annotation: Any, part: Any) -> list[Any]:
    """Where one part of an error location leads from `annotation`: a model's field, or the model itself
    when pydantic names the union member it tried, a list's item, a dict's value."""
    if _is_model(annotation):
        if part in annotation.model_fields:
            return _members(annotation.model_fields[part].annotation)
        return [annotation] if part == annotation.__name__ else []
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return _members(args[0])
    if origin is dict and len(args) == 2:
        return _members(args[1])
    return []


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route allows on this path (Starlette names only the first matching route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def install_problem_schema(app: FastAPI) -> None:
    """Document every 4xx/5xx answer as what it is: a Problem, as application/problem+json (FastAPI's
    default 422 schema is not what the handlers below send)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    body_types = operation.get("requestBody", {}).get("content", {})
                    if "application/json" in body_types:
                        operation["responses"].setdefault("400", {"description": "The body is not JSON."})
                    if "multipart/form-data" in body_types:
                        operation["responses"].setdefault(
                            "400", {"description": "The body is not multipart form data."}
                        )
                    for code, response in operation.get("responses", {}).items():
                        if code[:1] in ("4", "5"):
                            response["content"] = problem_content
                    for parameter in operation.get("parameters", []):
                        parameter["schema"] = _without_null(parameter["schema"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is left out, never sent as null: `anyOf: [X, null]` is just X."""
    members = [m for m in schema.get("anyOf", []) if m.get("type") != "null"]
    if len(members) != 1 or len(schema["anyOf"]) != 2:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**members[0], **rest}


def install_error_handlers(app: FastAPI) -> None:
    install_problem_schema(app)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(request, exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(HTTPStatus.UNPROCESSABLE_ENTITY, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return problem(HTTPStatus.SERVICE_UNAVAILABLE, "the database is unavailable; retry shortly")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
