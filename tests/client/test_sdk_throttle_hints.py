"""Throttle hints: on a 60007 from a server started with ``--throttle-hints`` (``Retry-After``,
``X-RateLimit-Limit/Remaining/Reset``) the client waits what the server says instead of its blind
backoff, and paces every call of the command to the limit the server named. Without the headers
(Tencent sends none) nothing changes.

Counted, not timed: the retries of a burst over the limit with and without hints, in one test; the
only time asserted is a lower bound (the hinted retry cannot leave before the server's second).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sdk_support import ImApp
from support import KEY, SDKAPPID, LiveServer, cli

from timserver.client import ApiError, AsyncClient, Client, Pacer, Retry
from timserver.client._retry import throttle_hints
from timserver.protocol.commands import ACCOUNT_CHECK

pytestmark = pytest.mark.slow

LIMIT = 5
BODY = {"CheckItem": [{"UserID": "a"}]}


@pytest.fixture(scope="module")
def hinting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path_factory.mktemp('hints') / 'live.db'}"
    live = LiveServer(db, "--no-access-log", "--throttle-hints")
    yield live
    live.stop()


@pytest.fixture
def hinted(hinting_server: LiveServer) -> ImApp:
    made = json.loads(cli("app", "create", "--json", db=hinting_server.db).stdout)
    return ImApp(hinting_server, made["sdkappid"], made["key"], made["admins"][0])


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- no I/O --------------------------------------------------------------------------------------


def test_hints_are_read_from_the_headers() -> None:
    assert throttle_hints(httpx.Headers({"Retry-After": "2", "X-RateLimit-Reset": "0.412",
                                         "X-RateLimit-Limit": "5"})) == (0.412, 5)
    assert throttle_hints(httpx.Headers({"Retry-After": "1"})) == (1.0, None)
    assert throttle_hints(httpx.Headers({})) == (None, None)  # Tencent: no hint at all
    assert throttle_hints(httpx.Headers({"Retry-After": "soon", "X-RateLimit-Limit": "x"})) == (
        None, None)
    date = throttle_hints(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert date == (0.0, None)  # a date in the past: no wait


def test_a_hint_holds_every_call_and_paces_to_the_named_limit() -> None:
    clock = FakeClock(10.0)
    pacer = Pacer(clock=clock, headroom=1.0)
    assert pacer.reserve("account_check") == 0.0
    before = pacer.epoch("account_check")
    pacer.throttled("account_check", 0.5, limit=4)
    assert pacer.epoch("account_check") != before  # waits taken before are void
    assert pacer.rates["account_check"] == 4 and pacer.learned == {"account_check": 4}
    assert [pacer.reserve("account_check") for _ in range(3)] == pytest.approx([0.5] * 3)
    assert pacer.admit("account_check") == pytest.approx(0.5)  # a call already on its way waits
    clock.t += 0.5
    assert [pacer.admit("account_check") for _ in range(5)][:4] == [0] * 4  # then 4 a window
    assert pacer.admit("account_check") > 0
    assert pacer.reserve("kick") == 0.0  # other commands are not held
    pacer.throttled("account_check", 0.1, limit=50)  # a higher limit never raises the pace
    assert pacer.rates["account_check"] == 4
    unpaced = Pacer({"kick": 0}, clock=clock)
    pacer_hold = unpaced.reserve("kick"), unpaced.throttled("kick", 2.0), unpaced.reserve("kick")
    assert pacer_hold[0] == 0.0 and pacer_hold[2] == pytest.approx(2.0)


def test_the_hinted_wait_is_bounded_by_the_retry_policy() -> None:
    clock = FakeClock(0.0)
    client = Client(SDKAPPID, KEY, "administrator", "http://127.0.0.1:9",
                    retry=Retry(attempts=5, backoff=0.01, max_backoff=0.5))
    client.pacer = Pacer(clock=clock)
    try:
        refused = ApiError(60007, "busy", command="account_check", retry_after=30.0, rate_limit=5)
        wait, _ = client._plan_retry(ACCOUNT_CHECK, refused, 1, "sig", False)
        assert wait == 0.0  # the pacer does the waiting
        assert client.pacer.reserve("account_check") == pytest.approx(0.5)  # not 30 s
        assert client.stats.hinted == 1 and client.stats.retried[60007] == 1
        blind = ApiError(60007, "busy", command="account_check")  # no headers: as before
        wait, _ = client._plan_retry(ACCOUNT_CHECK, blind, 1, "sig", False)
        assert 0.005 <= wait <= 0.01 and client.stats.hinted == 1
    finally:
        client.close()


# --- against real servers ------------------------------------------------------------------------


def test_the_retried_call_waits_what_the_server_says(hinted: ImApp, im: ImApp) -> None:
    # An injected 60007 carries Retry-After: 1 (and X-RateLimit-Reset: 1.000) on the hinting server.
    hinted.fault("--command", "account_check", "--code", "60007", "--times", "1")
    patient = Retry(attempts=5, backoff=0.01, max_backoff=5.0)  # blind backoff: 5 to 10 ms
    with hinted.client(retry=patient) as client:
        started = time.monotonic()
        client.account_check(BODY)
        elapsed = time.monotonic() - started
    assert client.stats.retried[60007] == 1 and client.stats.hinted == 1
    assert elapsed >= 0.95  # it waited the server's second, not the 10 ms backoff

    # The same refusal from a server without hints: the blind backoff, nothing learned.
    im.fault("--command", "account_check", "--code", "60007", "--times", "1")
    with im.client(retry=patient) as plain:
        plain.account_check(BODY)
    assert plain.stats.retried[60007] == 1 and plain.stats.hinted == 0
    assert plain.pacer.epoch("account_check") == 0 and plain.pacer.learned == {}


async def _burst(app: ImApp, calls: int) -> AsyncClient:
    app.set_limit("account_check", LIMIT)  # the client does not know: it paces to 100/s
    retry = Retry(attempts=40, backoff=0.05, max_backoff=1.0)
    async with app.aclient(retry=retry) as client:
        await asyncio.gather(*(client.account_check(BODY) for _ in range(calls)))
    return client


async def test_a_burst_over_the_limit_needs_fewer_retries_with_hints(hinted: ImApp,
                                                                     im: ImApp) -> None:
    blind = await _burst(im, 20)
    told = await _burst(hinted, 20)
    assert blind.stats.requests == 20 + blind.stats.retries  # every call got through
    assert told.stats.requests == 20 + told.stats.retries
    assert blind.stats.hinted == 0 and told.stats.hinted >= 1
    assert told.pacer.learned == {"account_check": LIMIT}
    assert told.stats.retried[60007] * 2 < blind.stats.retried[60007], (told.stats, blind.stats)
