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

A refusal that gets through anyway (60007) is retried like any retryable code. When the refusal
carries throttle hints (``timserver serve --throttle-hints``: ``X-RateLimit-Reset`` / ``Retry-After``
and ``X-RateLimit-Limit``; Tencent sends none), the client tells the pacer (``throttled``): no call
of that command leaves before the server said a call is accepted again, every call waiting for a
slot takes a new one (``epoch`` changes), and the command is paced from then on to the limit the
server named when that is below the rate the pacer had.
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
        self._hold: dict[str, float] = {}  # throttle hints: no call of the command before this
        self._epoch: dict[str, int] = {}  # bumped by each hint: the slots taken before are void
        self.learned: dict[str, int] = {}  # the limits the server named in its hints
        self._lock = threading.Lock()  # held for microseconds, never across a wait

    def interval(self, command: str) -> float:
        rate = self.rates.get(command, 0)
        return 1.0 / (rate * self.headroom) if rate > 0 else 0.0

    def reserve(self, command: str) -> float:
        """Take the next free slot of ``command``; return how many seconds to wait for it."""
        interval = self.interval(command)
        if not interval:
            if command not in self._hold:
                return 0.0
            with self._lock:
                return max(0.0, self._hold[command] - self._clock())
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(command, now), self._hold.get(command, now))
            self._next[command] = slot + interval
        return slot - now

    def epoch(self, command: str) -> int:
        """Changes when a throttle hint voids the slots taken so far (take a new one)."""
        return self._epoch.get(command, 0)

    def throttled(self, command: str, wait: float, limit: int | None = None) -> None:
        """A throttle hint: the server accepts no call of ``command`` for ``wait`` seconds, and
        (if given) its limit is ``limit`` calls per second."""
        with self._lock:
            now = self._clock()
            if limit is not None and limit > 0:
                self.learned[command] = limit
                rate = self.rates.get(command, 0)
                if rate <= 0 or limit < rate:
                    self.rates[command] = limit
            hold = max(self._hold.get(command, now), now + max(0.0, wait))
            self._hold[command] = hold
            # Every waiting call takes a new slot (epoch): restart the schedule at the hold.
            self._next[command] = hold
            self._epoch[command] = self._epoch.get(command, 0) + 1

    def admit(self, command: str) -> float:
        """Right before sending: 0 if the call may leave now (it is counted as sent), else the
        seconds to wait before asking again."""
        rate = self.rates.get(command, 0)
        if rate <= 0:
            return 0.0
        cap = max(1, math.ceil(rate * self.headroom))
        with self._lock:
            now = self._clock()
            hold = self._hold.get(command, now)
            if hold > now:
                return hold - now
            sent = self._sent.setdefault(command, deque())
            while sent and sent[0] <= now - WINDOW:
                sent.popleft()
            if len(sent) >= cap:
                return max(1e-4, sent[0] + WINDOW - now)
            sent.append(now)
        return 0.0
