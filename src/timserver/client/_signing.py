"""The admin's UserSig: signed by the client, renewed before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .. import usersig

DEFAULT_TTL = 86400  # Tencent recommends a validity of at least 24 hours (docs/protocol.md §5.6)


class Signer:
    """Hands out a valid UserSig for ``identifier``.

    It signs a new one when ``renew_before`` seconds or less of the current one remain, and when
    the server refused the current one (:meth:`renew`). Thread-safe; the lock is never held
    across a wait.
    """

    def __init__(self, sdkappid: int, key: str, identifier: str, *, ttl: int = DEFAULT_TTL,
                 renew_before: int | None = None, clock: Callable[[], float] = time.time) -> None:
        if ttl < 1:
            raise ValueError("the UserSig validity (ttl) must be at least 1 second")
        self.sdkappid = sdkappid
        self._key = key
        self.identifier = identifier
        self.ttl = ttl
        self.renew_before = min(3600, ttl // 10) if renew_before is None else renew_before
        self._clock = clock
        self._lock = threading.Lock()
        self._sig: str | None = None
        self._signed_at = 0
        self._not_before = 0  # after a refusal, a new sig must be signed in a later second
        self.signed = 0  # how many sigs this signer has made

    def __repr__(self) -> str:  # never the key, never a sig
        return f"Signer(sdkappid={self.sdkappid}, identifier={self.identifier!r}, ttl={self.ttl})"

    def current(self) -> str:
        with self._lock:
            now = int(self._clock())
            if self._sig is None or now >= self._signed_at + self.ttl - self.renew_before:
                self._sig = usersig.generate(self.sdkappid, self._key, self.identifier,
                                             self.ttl, now=now)
                self._signed_at = now
                self.signed += 1
            return self._sig

    def ready_in(self) -> float:
        """Seconds until a new sig would be signed late enough after a refusal (usually 0)."""
        with self._lock:
            if self._sig is not None:
                return 0.0
            return max(0.0, self._not_before - self._clock())

    def renew(self, refused: str) -> None:
        """The server refused ``refused`` (expired, or signed before a kick): sign anew.

        A kick refuses every sig signed in or before its second (docs/protocol.md §5.6), so the next sig is
        signed in a later second than the refused one. Several calls refused at once renew once.
        """
        with self._lock:
            if self._sig == refused:
                self._sig = None
                self._not_before = self._signed_at + 1
