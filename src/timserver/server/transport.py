"""Closing a connection without an answer: the one place that reaches below ASGI.

ASGI has no way to say "close the socket, send nothing" (a response must be started), yet the
emulator's dropped-connection fault needs exactly that. uvicorn's ``send`` callable is a bound
method of its per-request cycle object, which holds the connection's ``transport`` and a
``disconnected`` flag; ``abort`` uses those two attributes and nothing else.
``tests/test_transport.py`` runs a real uvicorn server through this function, so that a uvicorn
that changes underneath it fails a test rather than a user's fault rule.
"""

from __future__ import annotations

import asyncio
from typing import Any


def transport_of(send: Any) -> Any | None:
    """The asyncio transport behind uvicorn's ``send``, or None elsewhere (a test transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None  # asyncio's, uvloop's


async def abort(send: Any) -> bool:
    """Abort the connection ``send`` answers on, without a response. False when ``send`` is
    not uvicorn's (the caller then lets the signal go on to the server)."""
    transport = transport_of(send)
    if transport is None:
        return False
    transport.abort()
    cycle = send.__self__
    for _ in range(20):  # let the server see the loss, so that it sends nothing
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
    return True
