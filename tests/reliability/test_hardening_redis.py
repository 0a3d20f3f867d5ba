"""Issue 12, item 6: a Redis that accepts connections and never answers costs calls nothing and
does not fail readiness (docs/deploy.md: "Redis"; docs/security.md).

Before the fix every call waited the 0.5 s Redis timeout, for ever, and /readyz answered 503 on
every instance at once (a load balancer would have drained them all) while they served fine.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from reliability_support import Server, create_apps, log_defects, record, v4_query
from support import TcpProxy, redis_or_skip

from timserver.service.ratelimit import PROBE_EVERY, RedisLimiter

A = 1400007171


@pytest.fixture
def mute_redis() -> Iterator[int]:
    """A loopback TCP server that accepts every connection and never answers (nor closes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    listener.close()
    for conn in held:
        conn.close()


def test_a_mute_redis_costs_calls_nothing_and_readiness_holds(mute_redis: int,
                                                                tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mute.db'}"
    (app,) = create_apps(db, [{"sdkappid": A, "limits": {"account_check": 5}}])
    server = Server(db, tmp_path, "--no-access-log", "--redis",
                    f"redis://127.0.0.1:{mute_redis}/0", log_level="warning")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            def call() -> tuple[int, float]:
                started = time.monotonic()
                resp = client.post(f"/v4/im_open_login_svc/account_check?{v4_query(app)}",
                                   content=b'{"CheckItem":[{"UserID":"administrator"}]}')
                return resp.json()["ErrorCode"], time.monotonic() - started

            first = call()  # this one may wait for the timeout: it opens the breaker
            assert first[0] == 0
            time.sleep(1.1)
            calls = [call() for _ in range(8)]  # the local limiter holds the limit meanwhile
            assert [c for c, _ in calls].count(0) == 5 and [c for c, _ in calls].count(60007) == 3
            latencies = []
            for _ in range(4):
                time.sleep(1.05)
                latencies += [s for _, s in (call() for _ in range(5))]
            # before the fix each call waited the 0.5 s timeout; a loaded machine may delay one
            assert statistics.median(latencies) < 0.1, latencies
            assert sum(s > 0.45 for s in latencies) <= 2, latencies
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "degraded", "checks": {
                "database": True, "writes": True, "redis": False}}
            assert "timserver_ratelimit_fallback 1.0" in client.get("/metrics").text
    finally:
        server.stop()
    log = server.log()
    assert log.count("Redis is unreachable") == 1 and log_defects(log) == []
    record("redis_mute", first_call_s=round(first[1], 3),
           median_call_s=round(statistics.median(latencies), 4),
           max_call_s=round(max(latencies), 4))


async def test_the_breaker_closes_when_redis_answers_again() -> None:
    url = redis_or_skip()
    target = urlsplit(url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    limiter = RedisLimiter(url.replace(f":{target.port}", f":{proxy.port}"))
    direct = redis.Redis.from_url(url)
    key = ("hardening", f"breaker-{time.monotonic_ns()}")
    try:
        assert (await limiter.acquire(key, 100)).allowed and not limiter.degraded
        proxy.slow(2.0)  # Redis answers later than the limiter's 0.5 s timeout
        await limiter.acquire(key, 100)
        assert limiter.degraded
        started = time.monotonic()
        for _ in range(20):  # the breaker is open: no call waits
            assert (await limiter.acquire(key, 100)).allowed
        assert time.monotonic() - started < 0.1
        assert await limiter.ping() is False
        proxy.restore()
        deadline = time.monotonic() + PROBE_EVERY + 3
        while limiter.degraded and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not limiter.degraded, "the background probe closed the breaker"
        direct.delete(limiter._key(key))
        assert (await limiter.acquire(key, 100)).allowed
        assert direct.zcard(limiter._key(key)) == 1  # counted in Redis again
        assert await limiter.ping() is True
    finally:
        await limiter.close()
        direct.delete(limiter._key(key))
        direct.close()
        proxy.close()
