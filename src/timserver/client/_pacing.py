"""Client-side pacing: each command's calls kept under the server's rate limit, at full speed.

The server accepts at most RATE calls of a command in any one-second window, a strict sliding
window (docs/protocol.md §8.1): a call is accepted when fewer than RATE calls were accepted in
the second before it. So a window's RATE calls may all leave together, at its start, and the
next window's as soon as the first ones are more than a second old: the pacer keeps, per command,
the calls this client has in flight and the times its answers came back, and lets a call leave
(``admit``) while fewer than ``cap`` calls are in flight or were answered in the last
``WINDOW + MARGIN`` seconds. Counting an answered call from its *answer* (``done``), never from
its send, makes the rule hold whatever the network and the server's queue did: the server
checked the earlier call before it answered, and checks the new one after it is sent, so the two
checks are more than a second apart and the server never counts more than ``cap`` in a window.
``cap`` is RATE × ``headroom`` (default 1: the whole limit).

A refusal that gets through anyway (60007: another client of the same app, say) is retried like
any retryable code. When the refusal carries throttle hints (``timserver serve --throttle-hints``:
``X-RateLimit-Reset`` / ``Retry-After`` and ``X-RateLimit-Limit``; Tencent sends none), the client
tells the pacer (``throttled``): no call of that command leaves before the server said a call is
accepted again (``reserve`` returns the wait), every call waiting takes its turn again (``epoch``
changes), and the command is paced from then on to the limit the server named when that is below
the rate the pacer had.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from ..protocol.commands import DEFAULT_RATES

DEFAULT_HEADROOM = 1.0
WINDOW = 1.0  # seconds: the server's window (docs/protocol.md §8.1)
MARGIN = 0.002  # seconds: the window's edge and the clocks' granularity
POLL = 0.002  # seconds between looks while every call of the window is still in flight


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
        self._answered: dict[str, deque[float]] = {}  # answer times within the last window
        self._in_flight: dict[str, int] = {}
        self._hold: dict[str, float] = {}  # throttle hints: no call of the command before this
        self._epoch: dict[str, int] = {}  # bumped by each hint: the waits taken before are void
        self.learned: dict[str, int] = {}  # the limits the server named in its hints
        self._lock = threading.Lock()  # held for microseconds, never across a wait

    def cap(self, command: str) -> int:
        """Calls of ``command`` allowed in one window (0: not paced)."""
        rate = self.rates.get(command, 0)
        return max(1, math.floor(rate * self.headroom + 1e-9)) if rate > 0 else 0

    def reserve(self, command: str) -> float:
        """Seconds to wait before asking to send ``command`` (a throttle hint's hold, else 0)."""
        if command not in self._hold:
            return 0.0
        with self._lock:
            return max(0.0, self._hold[command] - self._clock())

    def epoch(self, command: str) -> int:
        """Changes when a throttle hint voids the waits taken so far (wait again)."""
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
            self._hold[command] = max(self._hold.get(command, now), now + max(0.0, wait))
            self._epoch[command] = self._epoch.get(command, 0) + 1

    def admit(self, command: str) -> float:
        """Right before sending: 0 if the call may leave now (it is counted as in flight until
        ``done``), else the seconds to wait before asking again."""
        cap = self.cap(command)
        if not cap:
            return 0.0
        with self._lock:
            now = self._clock()
            hold = self._hold.get(command, now)
            if hold > now:
                return hold - now
            answered = self._answered.setdefault(command, deque())
            while answered and answered[0] <= now - WINDOW - MARGIN:
                answered.popleft()
            in_flight = self._in_flight.get(command, 0)
            if in_flight + len(answered) >= cap:
                if answered:  # the oldest answer leaves the window then
                    return max(1e-4, answered[0] + WINDOW + MARGIN - now)
                return POLL
            self._in_flight[command] = in_flight + 1
        return 0.0

    def done(self, command: str) -> None:
        """An admitted call is over (answered, failed or given up): it counts from now for one
        window, instead of as in flight."""
        with self._lock:
            in_flight = self._in_flight.get(command, 0)
            if in_flight <= 0:
                return  # not counted when admitted (not paced then)
            self._in_flight[command] = in_flight - 1
            self._answered.setdefault(command, deque()).append(self._clock())
