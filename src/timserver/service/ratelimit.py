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


class SharedFileLimiter:
    """The same semantics, shared by the worker processes of one machine (``serve --workers N``).

    The sliding log lives in a small SQLite file (in ``/dev/shm`` when there is one); each call is
    one ``BEGIN IMMEDIATE`` transaction, so the processes take turns and the window is exact across
    them. The clock is ``CLOCK_MONOTONIC``, which all processes of a machine share. Nothing in it
    needs to survive a restart, so it is written without fsync.
    """

    def __init__(self, path: str, window: float = WINDOW) -> None:
        import sqlite3

        self.window = window
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=5.0,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("CREATE TABLE IF NOT EXISTS accepted (k TEXT NOT NULL, t REAL NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS accepted_k_t ON accepted (k, t)")

    def try_acquire(self, key: Hashable, rate: int) -> bool:
        if rate <= 0:
            return True
        k = repr(key)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.monotonic()  # read under the lock: the log stays in time order
            conn.execute("DELETE FROM accepted WHERE k = ? AND t <= ?", (k, now - self.window))
            (count,) = conn.execute("SELECT count(*) FROM accepted WHERE k = ?", (k,)).fetchone()
            accepted = count < rate
            if accepted:
                conn.execute("INSERT INTO accepted (k, t) VALUES (?, ?)", (k, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return accepted

    def retry_after(self, key: Hashable) -> float:
        row = self._conn.execute("SELECT min(t) FROM accepted WHERE k = ?", (repr(key),)).fetchone()
        if not row or row[0] is None:
            return 0.0
        return max(0.0, row[0] + self.window - time.monotonic())
