"""Rate limits: at most RATE accepted calls in any 1-second window, strictly (docs/protocol.md §8.1).

A sliding log: for each (app, command) the times of the calls accepted in the last second.
A call is accepted when fewer than RATE calls were accepted in the second before it. Unlike a
token bucket it never lets a burst above RATE through, and unlike fixed calendar seconds it has
no edge where 2 × RATE calls fit in one second; so a client pacing itself below RATE is never
refused. Memory is at most RATE timestamps per (app, command).

Three homes for the log, one semantics (``acquire(key, rate) -> Decision``):

* ``SlidingWindowLimiter``: in the process (one server process);
* ``SharedFileLimiter``: a SQLite file in ``/dev/shm`` shared by the workers of one machine;
* ``RedisLimiter``: a Redis sorted set per key, one Lua script (one round trip) per call, timed by
  Redis's own clock: exact across any number of instances. While Redis is unreachable it falls back
  to a local limiter (logged, and counted in the metrics) and returns to Redis when it answers.
  The fallback is a circuit breaker: after one failure or timeout, calls use the local limiter at
  once (no call waits for a Redis that accepts connections and never answers) while a background
  probe pings Redis every ``PROBE_EVERY`` seconds; its first answer closes the breaker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("timserver.ratelimit")

WINDOW = 1.0
PROBE_EVERY = 0.5  # seconds between two pings of a Redis that failed


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # calls per window; 0 = unlimited
    remaining: int  # calls still accepted in the current window
    retry_after: float  # seconds until one more call would be accepted (0 when allowed)


UNLIMITED = Decision(True, 0, 0, 0.0)


class RateLimiter(Protocol):
    async def acquire(self, key: Hashable, rate: int) -> Decision: ...


class SlidingWindowLimiter:
    def __init__(self, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._accepted: dict[Hashable, deque[float]] = {}

    def decide(self, key: Hashable, rate: int) -> Decision:
        """Count a call against ``key`` unless ``rate`` calls were accepted in the window."""
        if rate <= 0:
            return UNLIMITED
        now = self._clock()
        log_ = self._accepted.get(key)
        if log_ is None:
            log_ = self._accepted[key] = deque()
        cutoff = now - self.window
        while log_ and log_[0] <= cutoff:
            log_.popleft()
        if len(log_) >= rate:
            return Decision(False, rate, 0, max(0.0, log_[0] - cutoff))
        log_.append(now)
        return Decision(True, rate, rate - len(log_), 0.0)

    def forget(self, key: Hashable) -> None:
        """Empty the window of ``key`` (the emulator's reset)."""
        self._accepted.pop(key, None)

    def try_acquire(self, key: Hashable, rate: int) -> bool:
        return self.decide(key, rate).allowed

    async def acquire(self, key: Hashable, rate: int) -> Decision:
        return self.decide(key, rate)


class SharedFileLimiter:
    """The same semantics, shared by the worker processes of one machine (``serve --workers N``).

    The sliding log lives in a small SQLite file (in ``/dev/shm`` when there is one); each call is
    one ``BEGIN IMMEDIATE`` transaction, so the processes take turns and the window is exact across
    them. The clock is ``CLOCK_MONOTONIC``, which all processes of a machine share. Nothing in it
    needs to survive a restart, so it is written without fsync.
    """

    def __init__(self, path: str, window: float = WINDOW) -> None:
        self.window = window
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=5.0,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("CREATE TABLE IF NOT EXISTS accepted (k TEXT NOT NULL, t REAL NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS accepted_k_t ON accepted (k, t)")

    def decide(self, key: Hashable, rate: int) -> Decision:
        if rate <= 0:
            return UNLIMITED
        k = repr(key)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.monotonic()  # read under the lock: the log stays in time order
            cutoff = now - self.window
            conn.execute("DELETE FROM accepted WHERE k = ? AND t <= ?", (k, cutoff))
            count, oldest = conn.execute("SELECT count(*), min(t) FROM accepted WHERE k = ?",
                                         (k,)).fetchone()
            allowed = count < rate
            if allowed:
                conn.execute("INSERT INTO accepted (k, t) VALUES (?, ?)", (k, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if allowed:
            return Decision(True, rate, rate - count - 1, 0.0)
        return Decision(False, rate, 0, max(0.0, oldest - cutoff))

    def forget(self, key: Hashable) -> None:
        """Empty the window of ``key`` for every worker (the emulator's reset)."""
        self._conn.execute("DELETE FROM accepted WHERE k = ?", (repr(key),))

    def try_acquire(self, key: Hashable, rate: int) -> bool:
        return self.decide(key, rate).allowed

    async def acquire(self, key: Hashable, rate: int) -> Decision:
        return self.decide(key, rate)


# KEYS[1]: the log of one (app, command); ARGV: rate, window (µs), a unique member suffix.
# Redis's clock (TIME) is the one clock all instances share.
_SLIDING_LOG_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < rate then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, rate - count - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


class RedisLimiter:
    """The sliding log in Redis: exact across instances. After a failure it serves from a local
    limiter (the breaker is open) until a background ping gets an answer."""

    def __init__(self, url: str, *, fallback: RateLimiter | None = None,
                 window: float = WINDOW, timeout: float = 0.5, probe_every: float = PROBE_EVERY,
                 on_fallback: Callable[[bool], None] | None = None) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.window = window
        # every call to Redis runs under asyncio.timeout(timeout), connecting included: that is
        # its bound (redis-py's own socket timeouts, 5 s, are only a backstop)
        self._redis: Any = aioredis.from_url(url)
        self._script = self._redis.register_script(_SLIDING_LOG_LUA)
        self._fallback = fallback or SlidingWindowLimiter(window)
        self._prefix = "timserver:rl:"
        self._member = f"{os.getpid()}-{id(self):x}-"
        self._calls = itertools.count()  # numbers the calls of this instance
        self._timeout = timeout
        self._probe_every = probe_every
        self._probe: asyncio.Task[None] | None = None
        self.degraded = False  # the breaker is open: limits are this instance's own
        self._on_fallback = on_fallback

    async def acquire(self, key: Hashable, rate: int) -> Decision:
        if rate <= 0:
            return UNLIMITED
        if self.degraded:  # the breaker is open: no call waits for Redis
            return await self._fallback.acquire(key, rate)
        try:
            async with asyncio.timeout(self._timeout):
                allowed, remaining, wait_us = await self._script(
                    keys=[self._key(key)],
                    args=[rate, int(self.window * 1_000_000), f"{self._member}{next(self._calls)}"])
        except Exception as exc:  # any Redis or network failure: keep serving, locally
            self._degrade(exc.__class__.__name__)
            return await self._fallback.acquire(key, rate)
        return Decision(bool(allowed), rate, int(remaining), max(0.0, int(wait_us) / 1_000_000))

    def _degrade(self, why: str) -> None:
        if not self.degraded:
            log.warning("Redis is unreachable (%s): rate limits fall back to this instance's own "
                        "counters until it answers again (pinged every %g s)", why,
                        self._probe_every)
            self.degraded = True
            if self._on_fallback:
                self._on_fallback(True)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probing())

    async def _probing(self) -> None:
        while self.degraded:
            await asyncio.sleep(self._probe_every)
            if await self._answers():
                self._recover()

    def _recover(self) -> None:
        if self.degraded:
            log.warning("Redis answers again: rate limits are shared again")
            self.degraded = False
            if self._on_fallback:
                self._on_fallback(False)

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._redis.ping())
        except Exception:
            return False

    async def forget(self, key: Hashable) -> None:
        """Empty the window of ``key`` everywhere (the emulator's reset)."""
        if hasattr(self._fallback, "forget"):
            self._fallback.forget(key)
        if self.degraded:  # Redis's copy expires with its window anyway
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(self._key(key))
        except Exception as exc:
            self._degrade(exc.__class__.__name__)

    def _key(self, key: Hashable) -> str:
        parts = key if isinstance(key, tuple) else (key,)
        return self._prefix + ":".join(map(str, parts))

    async def ping(self) -> bool:
        """Whether Redis serves the limits now (/readyz): False while the breaker is open,
        without waiting; else a ping, whose failure opens it."""
        if self.degraded:
            return False
        if await self._answers():
            return True
        self._degrade("no answer to a ping")
        return False

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        await self._redis.aclose()
