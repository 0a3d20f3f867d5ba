"""The rate limiters at their edges (docs/protocol.md §8.1): the window's closing instant, what a decision
says (limit, remaining, retry-after), and the same answers from the three homes of the log, in
process and over HTTP (found by mutation testing, docs/testing.md)."""

from __future__ import annotations

import asyncio
import time
import types
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import query, redis_or_skip

from timserver.server.asgi import Settings
from timserver.service import ratelimit
from timserver.service.apps import create_app as create_im_app
from timserver.service.ratelimit import (
    UNLIMITED,
    Decision,
    RedisLimiter,
    SharedFileLimiter,
    SlidingWindowLimiter,
)
from timserver.wiring import make_app


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- in process: the sliding log --------------------------------------------------------------

def test_a_call_exactly_one_window_later_is_accepted() -> None:
    """The window is (now - 1 s, now]: the call of 1000.0 no longer counts at 1001.0."""
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    assert lim.decide("k", 1) == Decision(True, 1, 0, 0.0)
    clock.t = 1000.5
    assert lim.decide("k", 1) == Decision(False, 1, 0, 0.5)
    clock.t = 1001.0
    assert lim.decide("k", 1) == Decision(True, 1, 0, 0.0)


def test_a_decision_counts_down_and_says_how_long_to_wait() -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    assert [lim.decide("k", 3).remaining for _ in range(3)] == [2, 1, 0]
    clock.t = 1000.25
    assert lim.decide("k", 3) == Decision(False, 3, 0, 0.75)
    clock.t = 1000.75
    assert lim.decide("k", 3) == Decision(False, 3, 0, 0.25)
    clock.t = 1001.0  # all three leave together
    assert lim.decide("k", 3) == Decision(True, 3, 2, 0.0)


def test_a_custom_window() -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(window=2.0, clock=clock)
    assert lim.try_acquire("k", 1)
    clock.t = 1001.5
    assert lim.decide("k", 1) == Decision(False, 1, 0, 0.5)
    clock.t = 1002.0
    assert lim.try_acquire("k", 1)


async def test_forget_and_unlimited() -> None:
    lim = SlidingWindowLimiter(clock=FakeClock())
    assert await lim.acquire("k", 1) == Decision(True, 1, 0, 0.0)
    assert not (await lim.acquire("k", 1)).allowed
    lim.forget("k")
    lim.forget("never seen")  # nothing to forget is fine
    assert (await lim.acquire("k", 1)).allowed
    assert await lim.acquire("k", 0) is UNLIMITED
    assert await lim.acquire("k", -1) is UNLIMITED
    assert UNLIMITED == Decision(True, 0, 0, 0.0)


# --- a file shared by the workers of a machine --------------------------------------------------

def test_shared_file_limiter_counts_like_the_sliding_log(tmp_path: Path) -> None:
    path = str(tmp_path / "limits.sqlite")
    one, two = SharedFileLimiter(path), SharedFileLimiter(path)  # two workers
    decisions = [lim.decide(("app", "cmd"), 3) for lim in (one, two, one, two)]
    assert [(d.allowed, d.limit, d.remaining) for d in decisions] == \
        [(True, 3, 2), (True, 3, 1), (True, 3, 0), (False, 3, 0)]
    assert [d.retry_after for d in decisions[:3]] == [0.0, 0.0, 0.0]
    assert 0.5 < decisions[3].retry_after < 1.0  # the first call leaves the window then
    assert one.decide(("app", "other"), 1).allowed  # keys are independent
    assert one.decide("x", 0) is UNLIMITED
    two.forget(("app", "cmd"))  # for every worker
    assert one.decide(("app", "cmd"), 3).remaining == 2


def test_shared_file_limiter_window_slides(tmp_path: Path) -> None:
    lim = SharedFileLimiter(str(tmp_path / "limits.sqlite"), window=0.3)
    assert lim.try_acquire("k", 1) and not lim.try_acquire("k", 1)
    time.sleep(0.35)
    assert lim.try_acquire("k", 1)


def test_shared_file_limiter_rolls_back_a_failed_call(tmp_path: Path, monkeypatch) -> None:
    """A failure inside the transaction must not leave the file locked for the other workers."""
    path = str(tmp_path / "limits.sqlite")
    lim, other = SharedFileLimiter(path), SharedFileLimiter(path)

    def broken() -> float:
        raise OSError("clock")
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=broken))
    with pytest.raises(OSError, match="clock"):
        lim.decide("k", 1)
    monkeypatch.undo()
    assert other.decide("k", 1).allowed and not lim.try_acquire("k", 1)


async def test_shared_file_limiter_async(tmp_path: Path) -> None:
    lim = SharedFileLimiter(str(tmp_path / "limits.sqlite"))
    assert (await lim.acquire("k", 1)).allowed and not (await lim.acquire("k", 1)).allowed


# --- Redis: one log for every instance -----------------------------------------------------------

@pytest.fixture
async def redis_limiter() -> AsyncIterator[RedisLimiter]:
    lim = RedisLimiter(redis_or_skip())
    yield lim
    await lim.close()


async def test_redis_limiter_counts_and_keys_by_app_and_command(redis_limiter) -> None:
    key = (f"t{uuid.uuid4().hex[:8]}", "account_check")
    other = RedisLimiter(redis_limiter.url)  # another instance
    try:
        decisions = [await lim.acquire(key, 3) for lim in (redis_limiter, other, redis_limiter,
                                                           other)]
        assert [(d.allowed, d.limit, d.remaining) for d in decisions] == \
            [(True, 3, 2), (True, 3, 1), (True, 3, 0), (False, 3, 0)]
        assert [d.retry_after for d in decisions[:3]] == [0.0, 0.0, 0.0]
        assert 0.5 < decisions[3].retry_after <= 1.0
        name = f"timserver:rl:{key[0]}:account_check"
        assert await redis_limiter._redis.zcard(name) == 3
        assert 1000 < await redis_limiter._redis.pttl(name) <= 2000  # it expires after use
        assert await redis_limiter.acquire(key, 0) is UNLIMITED
        await other.forget(key)
        assert await redis_limiter._redis.exists(name) == 0
        assert (await redis_limiter.acquire(key, 3)).remaining == 2
        assert not redis_limiter.degraded and await redis_limiter.ping()
    finally:
        await other.close()


async def test_redis_limiter_window_slides(redis_limiter) -> None:
    short = RedisLimiter(redis_limiter.url, window=0.3)
    key = f"t{uuid.uuid4().hex[:8]}"
    try:
        assert (await short.acquire(key, 1)).allowed
        refused = await short.acquire(key, 1)
        assert not refused.allowed and 0.1 < refused.retry_after <= 0.3
        await asyncio.sleep(0.35)
        assert (await short.acquire(key, 1)).allowed
    finally:
        await short.close()


async def test_redis_unreachable_falls_back_to_a_local_log(caplog) -> None:
    from support import free_port

    changes: list[bool] = []
    fallback = SlidingWindowLimiter(clock=FakeClock())
    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", fallback=fallback, timeout=0.2,
                       on_fallback=changes.append)
    try:
        with caplog.at_level("WARNING", logger="timserver.ratelimit"):
            assert await lim.acquire("k", 1) == Decision(True, 1, 0, 0.0)
            assert not (await lim.acquire("k", 1)).allowed  # the fallback's own log
            await lim.forget("k")
        assert lim.degraded and changes == [True]  # said once, not per call
        assert [r.getMessage() for r in caplog.records] == [
            "Redis is unreachable (ConnectionError): rate limits fall back to this instance's "
            "own counters until it answers again (pinged every 0.5 s)"]
        assert (await lim.acquire("k", 1)).allowed  # forget reached the fallback
        assert not await lim.ping()
    finally:
        await lim.close()


# --- over HTTP: the same answer from each home ----------------------------------------------------

@pytest.fixture(params=["memory", "file", "redis"])
async def limited(request, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    extra: dict[str, Any] = {}
    if request.param == "file":
        extra["shared_limiter"] = str(tmp_path / "limits.sqlite")
    elif request.param == "redis":
        extra["redis"] = redis_or_skip()
    asgi = make_app(Settings(db=f"sqlite:///{tmp_path / 'db.sqlite'}", throttle_hints=True,
                             **extra))
    async with asgi.router.lifespan_context(asgi):
        storage = asgi.state.storage
        app = await create_im_app(storage, admins=("administrator",), edition="developer")
        app = await storage.update_app(app.sdkappid, limit=("account_check", 2))
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://timserver") as client:
            yield client, app


async def test_the_third_call_in_a_second_is_60007_with_hints(limited) -> None:
    client, app = limited
    url = "/v4/im_open_login_svc/account_check"
    body = b'{"CheckItem":[{"UserID":"administrator"}]}'
    answers = [await client.post(url, params=query(app), content=body) for _ in range(3)]
    assert [r.json()["ErrorCode"] for r in answers] == [0, 0, 60007]
    refused = answers[2]
    assert refused.json() == {
        "ActionStatus": "FAIL", "ErrorCode": 60007,
        "ErrorInfo": "REST API call frequency over the limit: account_check accepts 2 calls per "
                     "second for this app; slow down and retry."}
    assert (refused.headers["retry-after"], refused.headers["x-ratelimit-limit"]) == ("1", "2")
    assert 0.5 < float(refused.headers["x-ratelimit-reset"]) <= 1.0


async def test_shared_file_limiter_async_keys_apart(tmp_path: Path) -> None:
    lim = SharedFileLimiter(str(tmp_path / "limits.sqlite"))
    assert (await lim.acquire("a", 1)).allowed and (await lim.acquire("b", 1)).allowed


async def test_redis_limiter_keys_a_plain_string_whole(redis_limiter) -> None:
    key = f"plain{uuid.uuid4().hex[:8]}"
    await redis_limiter.acquire(key, 5)
    assert await redis_limiter._redis.exists(f"timserver:rl:{key}") == 1
    await redis_limiter.forget(key)


async def test_without_a_fallback_given_an_outage_is_served_by_a_local_log(caplog) -> None:
    from support import free_port

    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    try:
        with caplog.at_level("WARNING", logger="timserver.ratelimit"):
            await lim.forget("k")  # the first failure may be a reset's
            assert [(await lim.acquire("k", 2)).remaining for _ in range(2)] == [1, 0]
            assert not (await lim.acquire("k", 2)).allowed
        assert [r.getMessage() for r in caplog.records] == [
            "Redis is unreachable (ConnectionError): rate limits fall back to this instance's "
            "own counters until it answers again (pinged every 0.5 s)"]
    finally:
        await lim.close()


async def test_redis_outage_and_return(caplog) -> None:
    """A cut falls back (said once), a hang gives up within the timeout, and the limiter goes
    back to Redis when it answers again."""
    from urllib.parse import urlsplit

    from support import TcpProxy

    url = urlsplit(redis_or_skip())
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    changes: list[bool] = []
    lim = RedisLimiter(f"redis://127.0.0.1:{proxy.port}{url.path}", on_fallback=changes.append)
    key = f"t{uuid.uuid4().hex[:8]}"
    try:
        with caplog.at_level("WARNING", logger="timserver.ratelimit"):
            assert (await lim.acquire(key, 100)).allowed and not lim.degraded
            proxy.slow(3)
            started = time.monotonic()
            assert (await lim.acquire(key, 100)).allowed  # answered by the local log
            assert time.monotonic() - started < 1.2  # the 0.5 s timeout, not the hang
            assert lim.degraded and changes == [True]
            proxy.restore()
            deadline = time.monotonic() + 10
            while lim.degraded and time.monotonic() < deadline:
                await lim.acquire(key, 100)
                await asyncio.sleep(0.1)
            assert lim.degraded is False and changes == [True, False]
        messages = [r.getMessage() for r in caplog.records]
        assert messages[-1] == "Redis answers again: rate limits are shared again"
    finally:
        await lim.close()
        proxy.close()


# --- what RedisLimiter sends its script and makes of the answer (a stand-in for Redis) ---------

class FakeScript:
    """Stands for the registered Lua script: records what each call sends, answers ``answer``."""

    def __init__(self, answer: list[int]) -> None:
        self.answer = answer
        self.sent: list[tuple[list[str], list[Any]]] = []

    async def __call__(self, *, keys: list[str], args: list[Any]) -> list[int]:
        self.sent.append((keys, args))
        return self.answer


async def test_redis_limiter_speaks_microseconds_to_its_script() -> None:
    from support import free_port

    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", window=1.0)
    lim._script = script = FakeScript([0, 0, 250_000])  # refused: 250,000 µs to wait
    try:
        assert await lim.acquire(("app", "cmd"), 7) == Decision(False, 7, 0, 0.25)
        (keys, args), = script.sent
        assert keys == ["timserver:rl:app:cmd"] and args[:2] == [7, 1_000_000]  # the window in µs
        script.answer = [1, 6, 0]
        assert await lim.acquire(("app", "cmd"), 7) == Decision(True, 7, 6, 0.0)
        assert lim.degraded is False
    finally:
        await lim.close()


async def test_every_call_of_every_instance_sends_its_own_member() -> None:
    """Two calls must never add the same member to a sorted set (the second would replace the
    first, and the log would count one call less): the suffix tells apart the calls of one
    instance and the instances of one process."""
    from support import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    one, two = RedisLimiter(url), RedisLimiter(url)
    script = FakeScript([1, 0, 0])
    one._script = two._script = script
    try:
        for lim in (one, two, one, two, one):
            await lim.acquire("k", 10)
        members = [args[2] for _, args in script.sent]
        assert len(set(members)) == 5, members
    finally:
        await one.close()
        await two.close()


async def test_a_ping_without_answer_opens_the_breaker(caplog) -> None:
    """/readyz asks ``ping``: a Redis that does not answer is not ready, the limiter falls back at
    once (said in the log, with the reason), and the next ping does not wait."""
    from support import free_port

    changes: list[bool] = []
    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2,
                       on_fallback=changes.append)
    try:
        assert lim.degraded is False
        with caplog.at_level("WARNING", logger="timserver.ratelimit"):
            assert await lim.ping() is False
            assert await lim.ping() is False
        assert lim.degraded is True and changes == [True]
        assert [r.getMessage() for r in caplog.records] == [
            "Redis is unreachable (no answer to a ping): rate limits fall back to this instance's "
            "own counters until it answers again (pinged every 0.5 s)"]
    finally:
        await lim.close()
    await lim.close()  # closing twice is harmless (a shutdown may)


async def test_a_hung_redis_is_given_up_by_a_ping_and_by_a_reset() -> None:
    """Each call to Redis is bounded by the timeout: a call, a ping (/readyz) and a forget (the
    emulator's reset) to a Redis that answers too late give up and open the breaker."""
    from urllib.parse import urlsplit

    from support import TcpProxy

    url = urlsplit(redis_or_skip())
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    pinged = RedisLimiter(f"redis://127.0.0.1:{proxy.port}{url.path}")
    reset = RedisLimiter(f"redis://127.0.0.1:{proxy.port}{url.path}")
    counted = RedisLimiter(f"redis://127.0.0.1:{proxy.port}{url.path}")
    key = f"t{uuid.uuid4().hex[:8]}"
    try:
        assert await pinged.ping() is True
        assert (await reset.acquire(key, 100)).allowed and (await counted.acquire(key, 100)).allowed
        proxy.slow(1)  # Redis still answers, 2 s late (1 s each way): past the 0.5 s timeout
        assert await pinged.ping() is False
        await reset.forget(key)
        assert await counted.acquire(key, 100) == Decision(True, 100, 99, 0.0)  # the local log's
        assert (pinged.degraded, reset.degraded, counted.degraded) == (True, True, True)
    finally:
        for lim in (pinged, reset, counted):
            await lim.close()
        proxy.close()


def test_shared_file_limiter_answers_in_any_thread(tmp_path: Path) -> None:
    """The server may build its limiter in one thread and serve from another (the loop's)."""
    import concurrent.futures

    lim = SharedFileLimiter(str(tmp_path / "limits.sqlite"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(lim.decide, "k", 2).result() == Decision(True, 2, 1, 0.0)
    assert lim.decide("k", 2) == Decision(True, 2, 0, 0.0)
