"""A cap on the event streams one caller holds open on an API process, so a few clients cannot tie it up.

Streams are counted per owner when keys are on (all of an owner's keys together, like the other limits)
and per client address when they are off (the keyless `steadyfit serve` has one local caller, so on a
loopback address that is one count for everyone). Each API process counts its own streams.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from core.tenants.principal import Principal
from service.errors import TooManyStreams

# A slot frees when one of the caller's streams ends; coming back every few seconds costs next to nothing.
RETRY_AFTER_SECONDS = 5


class StreamSlots:
    """Open streams per holder. Used from the event loop only, so it needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, holder: str) -> Callable[[], None]:
        """One more stream for `holder`, or a 429; call what it returns once the stream has ended."""
        if self._open[holder] >= self.limit:
            raise TooManyStreams(self.limit, RETRY_AFTER_SECONDS)
        self._open[holder] += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._open[holder] -= 1
                if not self._open[holder]:
                    del self._open[holder]

        return release


async def get_stream_slots(request: Request) -> StreamSlots:
    stream_slots: StreamSlots = request.app.state.stream_slots
    return stream_slots


StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]


def holder(request: Request, principal: Principal) -> str:
    if request.app.state.settings.auth == "keys":
        return f"owner:{principal.owner}"
    return f"address:{request.client.host if request.client else ''}"


class SlotStream(StreamingResponse):
    """A streaming response that gives its slot back however it ends: finished, the client gone, or an error."""

    def __init__(self, content: AsyncIterable[str], release: Callable[[], None], headers: dict[str, str]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()
