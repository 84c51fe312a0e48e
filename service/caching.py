"""Conditional GETs: an ETag on the response, 304 with no body when the client already has it."""

from __future__ import annotations

from fastapi import Request, Response

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
