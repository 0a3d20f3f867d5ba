"""One retry loop for both clients (issue 16, item 3): ``Client`` and ``AsyncClient`` drive the
same generator (``BaseClient._flow``, client/_base.py), as httpx drives its auth flows, so the
same answers make the same calls from both, and a call stopped in flight gives its slot back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from timserver.client import AsyncClient, Client, Retry
from timserver.protocol.errors import RETRYABLE_CODES

RETRYABLE = min(RETRYABLE_CODES)
OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
FAIL = {"ActionStatus": "FAIL", "ErrorCode": RETRYABLE, "ErrorInfo": "try again"}
ARGS = (1400000001, "k" * 64, "administrator", "http://127.0.0.1:9")


def scripted() -> tuple[list[str], Callable[[httpx.Request], httpx.Response]]:
    """A server that fails the network once, answers a retryable ErrorCode once, then OK."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=FAIL if len(seen) == 2 else OK)
    return seen, handler


def test_both_clients_make_the_same_calls_for_the_same_answers() -> None:
    retry = Retry(attempts=3, backoff=0.001)
    seen, handler = scripted()
    with Client(*ARGS, retry=retry, transport=httpx.MockTransport(handler)) as client:
        answer = client.kick(UserID="amy")
        stats = (client.stats.requests, client.stats.retries)

    async def run_async() -> tuple[object, list[str], tuple[int, int]]:
        aseen, ahandler = scripted()
        async with AsyncClient(*ARGS, retry=retry,
                               transport=httpx.MockTransport(ahandler)) as aclient:
            return (await aclient.kick(UserID="amy"), aseen,
                    (aclient.stats.requests, aclient.stats.retries))
    aanswer, aseen, astats = asyncio.run(run_async())
    assert answer == aanswer and answer.ErrorCode == 0
    assert seen == aseen == ["/v4/im_open_login_svc/kick"] * 3
    assert stats == astats == (3, 2)


def test_a_call_stopped_in_flight_gives_its_slot_back() -> None:
    """The flow counts the call answered (``pacer.done``) whatever stops its POST."""
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt
    with Client(*ARGS, transport=httpx.MockTransport(interrupted)) as client:
        try:
            client.kick(UserID="amy")
        except KeyboardInterrupt:  # checked while it is alive: its frames keep the flow open
            assert client.pacer._in_flight == {"kick": 0}
        else:
            pytest.fail("the interrupt was swallowed")

    async def cancelled() -> dict[str, int]:
        arrived, never = asyncio.Event(), asyncio.Event()

        async def hangs(request: httpx.Request) -> httpx.Response:
            arrived.set()
            await never.wait()
            raise AssertionError("not reached")
        async with AsyncClient(*ARGS, transport=httpx.MockTransport(hangs)) as aclient:
            task = asyncio.create_task(aclient.kick(UserID="amy"))
            await arrived.wait()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return dict(aclient.pacer._in_flight)
            pytest.fail("the call was not cancelled")
    assert asyncio.run(cancelled()) == {"kick": 0}
