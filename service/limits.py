"""A cap on request bodies, enforced while they stream in rather than after they are buffered."""

from __future__ import annotations

import re

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import problem

# The routes that take a file: a data set or a model upload, a file of rows to predict (now or in a batch).
UPLOAD_PATHS = re.compile(r"/v1/(datasets|models)|/v1/(jobs|models)/[^/]+/(predict/file|predictions)")


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing lets it through (any other error there is a 400)."""

    def __init__(self, upload: bool, cap: int) -> None:
        super().__init__(413, f"{'the upload' if upload else 'the request body'} is over the limit of {cap} bytes")


class BodySizeLimit:
    """Answers 413 to a request whose body is over its cap: `upload_bytes` for an upload (UPLOAD_PATHS),
    `max_bytes` for every other request, so no route parses a body larger than it could need.

    A declared Content-Length over the cap is refused before a byte is read; a chunked body is
    counted as it arrives and cut off at the cap.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int) -> None:
        self.app, self.max_bytes, self.upload_bytes = app, max_bytes, upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = UPLOAD_PATHS.fullmatch(scope["path"]) is not None
        cap = self.upload_bytes if upload else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            too_large = BodyTooLarge(upload, cap)
            await problem(too_large.status_code, too_large.detail)(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(upload, cap)  # answered by the app's handler for HTTP errors
            return message

        await self.app(scope, counted_receive, send)
