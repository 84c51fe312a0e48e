"""A webhook receiver for tests: an HTTP server on 127.0.0.1, in a thread, that records every POST it is
sent and answers each as planned: a status code, or `STALL` (hold the request until `release` is set)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STALL = "stall"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, plan: list[int | str]) -> None:
        self.plan = list(plan)  # answers to the first requests, in order; 200 after them
        self.received: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def _next_answer(self, received: Received) -> int | str:
        with self._lock:
            self.received.append(received)
            return self.plan.pop(0) if self.plan else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = receiver._next_answer(Received(dict(self.headers.items()), body))
                if answer == STALL:
                    receiver.release.wait(120)
                    return  # the sender is gone by then: nothing to answer
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler


@contextmanager
def receiving(plan: list[int | str] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(plan or [])
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
