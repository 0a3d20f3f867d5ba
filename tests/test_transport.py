"""``server/transport.py`` against a real uvicorn server: if uvicorn changes what its ``send``
holds, this fails, not a user's dropped-connection fault rule."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn

from timserver.server import transport
from timserver.server.httpguard import GuardedHttpToolsProtocol


@pytest.mark.parametrize("http", [GuardedHttpToolsProtocol, "h11"])
async def test_abort_closes_the_connection_without_an_answer(http: object) -> None:
    seen: dict[str, object] = {}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await receive()
        seen["transport"] = transport.transport_of(send)
        seen["aborted"] = await transport.abort(send)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=http,
                                           log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
        assert seen["transport"] is not None and seen["aborted"] is True
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def test_elsewhere_abort_says_no() -> None:
    async def send(message: object) -> None:
        return None

    assert transport.transport_of(send) is None
    assert asyncio.run(transport.abort(send)) is False
