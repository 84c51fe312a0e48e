"""Conditional GETs: an ETag on the response, 304 with no body when the client already has it."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel

NO_CACHE = "private, no-cache"  # may be stored, but must be revalidated: changes any second
FINAL = "private, max-age=3600"  # a finished job never changes again


def matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def not_modified(etag: str, cache_control: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})


def tag(response: Response, etag: str, cache_control: str) -> None:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control


def tagged_json(model: BaseModel, etag: str, cache_control: str) -> Response:
    """The model as a JSON response with its ETag. Returned as a Response, it is sent as it is: FastAPI would
    otherwise validate a model the handler has just built once more against the route's response model,
    which for a page of jobs or a long history costs as much as building it."""
    response = Response(model.model_dump_json(), media_type="application/json")
    tag(response, etag, cache_control)
    return response
