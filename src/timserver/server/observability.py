"""Operation: Prometheus metrics, structured (JSON) logs, health and readiness.

With ``serve --workers N`` the workers write their metrics to a shared folder
(``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``) and ``/metrics`` sums them, whichever worker
answers the scrape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("timserver_requests_total", "Answered /v4 calls, by command and ErrorCode.",
                   ["command", "code"])
LATENCY = Histogram("timserver_request_duration_seconds", "Time to answer a /v4 call.",
                    ["command"], buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                          1, 2.5, 5))
RATE_LIMITED = Counter("timserver_rate_limited_total", "Calls refused with 60007.", ["command"])
POOL_SIZE = Gauge("timserver_db_pool_connections", "Database pool connections, by state.",
                  ["state"], multiprocess_mode="livesum")
LIMITER_FALLBACK = Gauge("timserver_ratelimit_fallback",
                         "1 while Redis is unreachable and limits are per instance.",
                         multiprocess_mode="max")


RECORDED_CHARS = 128  # a request-derived text is cut to this many characters when recorded


def clip(text: str | None) -> str | None:
    """A request-derived text as it may be recorded (access log, JSON log, journal): at most
    ``RECORDED_CHARS`` characters, every character that is not printable (control bytes, line
    breaks, escape sequences, bytes that were not UTF-8) replaced by U+FFFD, so that no value
    can forge a log line or grow a record without bound."""
    if text is None:
        return None
    cut = text[:RECORDED_CHARS]
    if cut.isprintable():  # the common case (a lone surrogate is not printable either)
        return cut
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in cut)


_BOUNDS = (*LATENCY._upper_bounds,)  # the buckets' upper bounds, +Inf last
FLUSH_EVERY = 1.0  # seconds: the longest a call goes uncounted in the shared metrics


class _Tally:
    """The /v4 call counters, kept in plain dicts and moved into the Prometheus series at most
    once a second (and before every scrape): a Prometheus ``inc`` and ``observe`` take a lock
    and walk the buckets in Python, a few microseconds on every call.

    With ``serve --workers N``, the scrape of one worker reads the others' counts from the
    shared folder: they are at most ``FLUSH_EVERY`` late (a timer flushes an idle worker too).
    """

    def __init__(self) -> None:
        self.calls: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}  # per command: a count per bucket
        self.sums: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def observe(self, command: str | None, code: int, seconds: float) -> None:
        name = command or "unknown"
        key = (name, code)
        calls = self.calls
        calls[key] = calls.get(key, 0) + 1
        counts = self.buckets.get(name)
        if counts is None:
            counts = self.buckets[name] = [0] * len(_BOUNDS)
            self.sums[name] = 0.0
        counts[bisect_left(_BOUNDS, seconds)] += 1
        self.sums[name] += seconds
        if self._timer is None or self._timer_loop is not asyncio.get_running_loop():
            self._schedule()

    def _schedule(self) -> None:
        """A flush in ``FLUSH_EVERY`` seconds, on the running loop (a test may run several
        loops one after the other: a timer of a closed loop never fires)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer_loop = asyncio.get_running_loop()
        self._timer = self._timer_loop.call_later(FLUSH_EVERY, self.flush)

    def flush(self) -> None:
        """Move what was counted into the Prometheus series."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        calls, self.calls = self.calls, {}
        buckets, self.buckets = self.buckets, {}
        sums, self.sums = self.sums, {}
        for (name, code), n in calls.items():
            REQUESTS.labels(name, str(code)).inc(n)
            if code == 60007:
                RATE_LIMITED.labels(name).inc(n)
        for name, counts in buckets.items():
            series = LATENCY.labels(name)
            for i, n in enumerate(counts):  # as Histogram.observe counts: the first bound >= it
                if n:
                    series._buckets[i].inc(n)
            series._sum.inc(sums[name])


_tally = _Tally()
observe = _tally.observe


def set_limiter_fallback(active: bool) -> None:
    LIMITER_FALLBACK.set(1 if active else 0)


def render(pool_stats: Callable[[], tuple[int, int]] | None = None) -> tuple[bytes, str]:
    """The metrics text, after refreshing the gauges this process can read now (``pool_stats``:
    the storage's, when it has a connection pool)."""
    _tally.flush()
    if pool_stats is not None:
        size, idle = pool_stats()
        POOL_SIZE.labels("in_use").set(size - idle)
        POOL_SIZE.labels("idle").set(idle)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Per process (workers are spawned): timserver's own lines to stderr."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger("timserver")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
