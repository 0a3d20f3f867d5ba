"""When to try a call again, and how long to wait first (docs/protocol.md §6.3)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from ..protocol.errors import RETRYABLE_CODES

#: UserSig refusals a freshly signed UserSig cures: expired (the clocks disagree, or it outlived
#: its renewal) and kicked (someone invalidated the admin's login state).
RESIGN_CODES: frozenset[int] = frozenset({70001, 70005})

#: HTTP statuses worth a retry when a proxy or gateway stands in front of the API.
RETRYABLE_HTTP_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with jitter, bounded.

    A call is sent at most ``attempts`` times. Before try n+1 it waits a random time between half
    and all of ``min(max_backoff, backoff * multiplier**(n-1))`` seconds ("equal jitter": clients
    that failed together do not come back together, and none comes back at once).
    ``codes`` are the ErrorCodes to retry; transport failures are retried too.
    """

    attempts: int = 6
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    codes: frozenset[int] = RETRYABLE_CODES
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1 (1 = no retries)")
        if self.backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("Retry: backoff and max_backoff must be >= 0, multiplier >= 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.backoff * self.multiplier ** (retry - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


NO_RETRY = Retry(attempts=1)


def throttle_hints(headers: Mapping[str, str]) -> tuple[float | None, int | None]:
    """(seconds to wait, calls-per-second limit) from the headers of a 60007, each ``None`` when
    absent or unreadable.

    ``X-RateLimit-Reset`` (seconds, millisecond precision) is preferred to ``Retry-After``, which
    says the same rounded up to whole seconds (or as an HTTP date). Tencent sends neither.
    """
    wait = _seconds(headers.get("x-ratelimit-reset"))
    if wait is None:
        wait = _seconds(headers.get("retry-after"), dates=True)
    limit: int | None = None
    raw = headers.get("x-ratelimit-limit")
    if raw is not None:
        try:
            limit = int(raw.strip())
        except ValueError:
            limit = None
        if limit is not None and limit <= 0:
            limit = None
    return wait, limit


def _seconds(raw: str | None, dates: bool = False) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        if not dates:
            return None
        try:
            value = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(value):
        return None
    return max(0.0, value)
