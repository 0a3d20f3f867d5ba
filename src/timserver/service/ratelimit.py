"""Rate limits: at most RATE accepted calls in any 1-second window, strictly (spec §9.6).

A sliding log: for each (app, command) the times of the calls accepted in the last second.
A call is accepted when fewer than RATE calls were accepted in the second before it. Unlike a
token bucket it never lets a burst above RATE through, and unlike fixed calendar seconds it has
no edge where 2 × RATE calls fit in one second; so a client pacing itself below RATE is never
refused. Memory is at most RATE timestamps per (app, command).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

WINDOW = 1.0


class SlidingWindowLimiter:
    def __init__(self, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._accepted: dict[Hashable, deque[float]] = {}

    def try_acquire(self, key: Hashable, rate: int) -> bool:
        """Count a call against ``key``; False when ``rate`` calls were accepted in the window.

        ``rate`` <= 0 means unlimited.
        """
        if rate <= 0:
            return True
        now = self._clock()
        log = self._accepted.get(key)
        if log is None:
            log = self._accepted[key] = deque()
        cutoff = now - self.window
        while log and log[0] <= cutoff:
            log.popleft()
        if len(log) >= rate:
            return False
        log.append(now)
        return True

    def retry_after(self, key: Hashable) -> float:
        """Seconds until the oldest accepted call of ``key`` leaves the window."""
        log = self._accepted.get(key)
        if not log:
            return 0.0
        return max(0.0, log[0] + self.window - self._clock())
