"""Client-side pacing: each command's calls spaced to stay under the server's rate limit.

The server accepts at most RATE calls in any 1-second window (spec §9.6). The pacer does two
things, per command, for every call of a client, whichever thread or task makes it:

* it hands out send times ("slots") spaced ``1 / (RATE × headroom)`` apart, never a burst
  (by default 99 % of RATE: the server could count RATE + 1 calls in a second only if the
  network or the server delayed one call by 10 ms more than the one RATE calls later);
* right before a call is sent it checks the calls really sent in the last second (``admit``): when
  the process was descheduled or paused, the calls whose slots went by meanwhile would otherwise
  leave together, a burst the server refuses; they are held back to ``ceil(RATE × headroom)``
  a second instead.

A refusal that gets through anyway (60007) is retried like any retryable code.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from ..protocol.commands import DEFAULT_RATES

DEFAULT_HEADROOM = 0.99
WINDOW = 1.0  # seconds: the server's window (spec §9.6)


class Pacer:
    def __init__(self, rates: Mapping[str, float] | None = None, *,
                 headroom: float = DEFAULT_HEADROOM,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.rates: dict[str, float] = {**DEFAULT_RATES, **(rates or {})}
        for name, rate in self.rates.items():
            if rate < 0:
                raise ValueError(f"rate of {name} must be >= 0 (0 = not paced)")
        self.headroom = headroom
        self._clock = clock
        self._next: dict[str, float] = {}
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # held for microseconds, never across a wait

    def interval(self, command: str) -> float:
        rate = self.rates.get(command, 0)
        return 1.0 / (rate * self.headroom) if rate > 0 else 0.0

    def reserve(self, command: str) -> float:
        """Take the next free slot of ``command``; return how many seconds to wait for it."""
        interval = self.interval(command)
        if not interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(command, now))
            self._next[command] = slot + interval
        return slot - now

    def admit(self, command: str) -> float:
        """Right before sending: 0 if the call may leave now (it is counted as sent), else the
        seconds to wait before asking again."""
        rate = self.rates.get(command, 0)
        if rate <= 0:
            return 0.0
        cap = max(1, math.ceil(rate * self.headroom))
        with self._lock:
            now = self._clock()
            sent = self._sent.setdefault(command, deque())
            while sent and sent[0] <= now - WINDOW:
                sent.popleft()
            if len(sent) >= cap:
                return max(1e-4, sent[0] + WINDOW - now)
            sent.append(now)
        return 0.0
