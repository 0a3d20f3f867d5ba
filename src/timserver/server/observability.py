"""Operation: Prometheus metrics, structured (JSON) logs, health and readiness.

With ``serve --workers N`` the workers write their metrics to a shared folder
(``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``) and ``/metrics`` sums them, whichever worker
answers the scrape.
"""

from __future__ import annotations

import json
import logging
import os
import time
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


_children: dict[tuple[str, int], tuple[Any, Any]] = {}  # (command, code) → its two series


def observe(command: str | None, code: int, seconds: float) -> None:
    name = command or "unknown"
    series = _children.get((name, code))
    if series is None:  # commands and codes are finite: the table's and the catalogue's
        series = _children[(name, code)] = (REQUESTS.labels(name, str(code)), LATENCY.labels(name))
    series[0].inc()
    series[1].observe(seconds)
    if code == 60007:
        RATE_LIMITED.labels(name).inc()


def set_limiter_fallback(active: bool) -> None:
    LIMITER_FALLBACK.set(1 if active else 0)


def render(storage: Any) -> tuple[bytes, str]:
    """The metrics text, after refreshing the gauges this process can read now."""
    pool = getattr(storage, "pool_stats", None)
    if pool is not None:
        size, idle = pool()
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
