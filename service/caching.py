"""Conditional GETs: an ETag on the response, 304 with no body when the client already has it; and the
bodies last sent, kept by ETag, so a resource read again unchanged is sent without being built again."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

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


def tagged_body(body: bytes, etag: str, cache_control: str) -> Response:
    """JSON built by the handler, sent as it is with its ETag. (Returned as a model, FastAPI would validate
    what the handler has just built once more against the route's response model, which for a page of jobs or
    a long history costs as much as building it.)"""
    response = Response(body, media_type="application/json")
    tag(response, etag, cache_control)
    return response


class BodyCache:
    """Serialized response bodies, each under the ETag of the resource version it shows, least recently used
    first out past `max_bytes`. A body is only ever handed out for the ETag it was stored with, and a
    resource's ETag changes with every change a client can see, so an entry never goes stale: it just stops
    being asked for."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._bodies: OrderedDict[Hashable, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # stored from the thread pool, read on the event loop

    def get(self, key: Hashable, etag: str) -> bytes | None:
        with self._lock:
            found = self._bodies.get(key)
            if found is None or found[0] != etag:
                return None
            self._bodies.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, etag: str, body: bytes) -> None:
        if len(body) > self.max_bytes // 8:  # one huge history would push out everything else
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self.size -= len(old[1])
            self._bodies[key] = (etag, body)
            self.size += len(body)
            while self.size > self.max_bytes:
                self.size -= len(self._bodies.popitem(last=False)[1][1])


class ReadsInFlight:
    """One database read at a time per resource key in this process. When a job changes, every poll of it
    misses in memory at once; those that arrive while one read is under way wait for it and look in memory
    again, so a job watched by many costs one read per change, not one per poll."""

    def __init__(self) -> None:
        self._reads: dict[Hashable, asyncio.Event] = {}  # used on the event loop only

    async def wait(self, key: Hashable) -> bool:
        """Wait for the read of `key` under way, if any; whether there was one."""
        read = self._reads.get(key)
        if read is None:
            return False
        await read.wait()
        return True

    @contextmanager
    def reading(self, key: Hashable) -> Iterator[None]:
        """Around a read of `key`: others wait for it (if none is under way already)."""
        if key in self._reads:
            yield
            return
        read = self._reads[key] = asyncio.Event()
        try:
            yield
        finally:
            del self._reads[key]
            read.set()
