"""Bounds on a request's head that uvicorn does not impose (docs/security.md).

uvicorn's httptools protocol buffers a request line and headers of any size, and waits for them
for ever: one connection can make the server hold gigabytes of header, and slow clients
(slowloris: headers sent a byte at a time) hold their connections open indefinitely. Its only
timer is the keep-alive timeout, armed after a response and not before the first request.

``GuardedHttpToolsProtocol`` is uvicorn's protocol with these additions:

* **a head deadline**: the request line and headers must arrive within a time limit
  (``serve --header-timeout``, default 10 s) of the connection, or of the first byte of the next
  request on a kept-alive connection; otherwise 408 and the connection is closed;
* **a head size cap**: a request line and headers over ``MAX_HEAD_BYTES`` (64 KiB) are answered
  431 and the connection is closed, whether the head arrived in one read or in many; a head
  still unfinished is measured by the bytes received since it began, a finished one by what
  the parser read (so a connection holds at most 64 KiB of head, plus one read only when the
  head began in the same read as the end of a pipelined request before it);
* **no endless bodies after the answer**: when a request is answered before its body has
  arrived (an endpoint that reads no body, a call refused before its body is read), the rest of
  the body must arrive within the same time limit, or the connection is closed (uvicorn
  would read and discard a trickled body for ever);
* **pipelined requests cut cleanly**: when a connection is closed (a malformed request after a
  pipelined one, a refused head, the client gone), the request still running is told it is
  disconnected. uvicorn tells only the newest request, so the running one wrote its answer to
  the closed transport: a RuntimeError and a traceback in the log (found by the raw-bytes
  fuzzer, tests/reliability/).

The body itself is bounded by the endpoints (1 MiB or less, 10 s; ``dispatch.py``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_ENV = "TIMSERVER_HEADER_TIMEOUT"
DEFAULT_HEAD_TIMEOUT = 10.0
MAX_HEAD_BYTES = 64 * 1024


def head_timeout() -> float:
    """``serve --header-timeout``, which ``serve`` passes to its workers in the environment."""
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEAD_TIMEOUT))
    except ValueError:
        return DEFAULT_HEAD_TIMEOUT
    return value if value > 0 else DEFAULT_HEAD_TIMEOUT


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a finished head that is over the cap."""


def _parsed_head_bytes(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The size of what the parser has read of a head: its target and whole header lines."""
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


def _plain(status: bytes, text: str) -> bytes:
    body = text.encode("ascii")
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\nconnection: close\r\n\r\n"
            + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline and a head size cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        self._head_began = False  # the current head began in the chunk being fed
        self._completed_in_chunk = False  # a request ended in the chunk being fed
        self._head_after_completion = False  # ...before the current head began in it
        self._head_too_large = False
        self._running: Any = None  # the request whose ASGI task runs (not always self.cycle)
        self._drain_timer: asyncio.TimerHandle | None = None  # the rest of an answered body
        self._timeout = head_timeout()

    # --- the head of each request -------------------------------------------------------------
    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_began = True
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._timeout, self._head_timed_out)

    def _end_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _abandon_running(self) -> None:
        running = self._running
        if running is not None and not running.response_complete:
            running.disconnected = True
            running.message_event.set()

    def _refuse(self, answer: bytes) -> None:
        self._end_head()
        self._abandon_running()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._refuse(_plain(b"408 Request Timeout",
                            f"The request headers did not arrive within {self._timeout:g} s."))

    # --- uvicorn's callbacks --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()  # a connection that never sends a request is closed too

    def _end_drain(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        self._end_drain()
        self._abandon_running()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:  # the parser stopped on our _HeadTooLarge
            self._refuse_head()
            return
        self._abandon_running()
        super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._refuse(_plain(b"431 Request Header Fields Too Large",
                            f"The request line and headers exceed {MAX_HEAD_BYTES} bytes."))

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        self._head_began = False
        self._completed_in_chunk = False
        super().data_received(data)
        if self._in_head and self.parser is not None and not self.transport.is_closing():
            # Count what arrived while the head is unfinished. A chunk in which a head began
            # holds only that head, unless a request ended in it before (pipelining): then
            # only what the parser has read of the head is known to be head.
            if not self._head_began:
                self._head_bytes += len(data)
            elif not self._head_after_completion:
                self._head_bytes = len(data)
            if max(self._head_bytes, _parsed_head_bytes(self.url, self.headers)) > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()
        self._head_after_completion = self._completed_in_chunk

    def on_headers_complete(self) -> None:
        # A head that arrived whole in one read is measured here, before the app sees it.
        if _parsed_head_bytes(self.url, self.headers) > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge  # the parser stops; uvicorn then calls send_400_response
        self._end_head()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed_in_chunk = True
        self._end_drain()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle  # the answered request, unless a pipelined one was parsed since
        if (cycle is not None and cycle.response_complete and cycle.more_body
                and self._drain_timer is None and not self.transport.is_closing()):
            # Answered before the whole body came: its rest gets the head's time limit.
            self._drain_timer = self.loop.call_later(self._timeout, self._drain_timed_out)
        super().on_response_complete()
