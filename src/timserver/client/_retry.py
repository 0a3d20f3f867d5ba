"""When to try a call again, and how long to wait first (spec §9.5)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

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
