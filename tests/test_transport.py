"""``server/transport.py`` against a real uvicorn server, with the HTTP protocol ``timserver
serve`` runs (``httpguard``) on each event loop it may get: if uvicorn changes what its ``send``
holds, this fails, not a user's dropped-connection fault rule."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from timserver.server import transport


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_abort_closes_the_connection_without_an_answer(loop: str) -> None:
    http = "timserver.server.httpguard:GuardedHttpToolsProtocol"  # what serve runs
    seen: dict[str, object] = {}
    done = threading.Event()  # the client sees the close before ``abort`` returns on the server

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await receive()
        seen["transport"] = transport.transport_of(send)
        seen["aborted"] = await transport.abort(send)
        done.set()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=http,
                                           loop=loop, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=5)
        assert done.wait(10), "the app never finished aborting"
        assert seen["transport"] is not None and seen["aborted"] is True
    finally:
        server.should_exit = True
        thread.join(10)


def test_elsewhere_abort_says_no() -> None:
    async def send(message: object) -> None:
        return None

    assert transport.transport_of(send) is None
    assert asyncio.run(transport.abort(send)) is False
