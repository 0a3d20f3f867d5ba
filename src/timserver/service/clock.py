"""The service's sense of time, in one place so that it can be shifted on purpose."""

from __future__ import annotations

import time
from collections.abc import Mapping


class Clock:
    """Wall-clock seconds plus an offset (the emulator's controllable clock), per app.

    ``offset`` is the server-wide part (every app); an app whose clock was moved on its own
    (``POST /_timserver/clock``, ``timserver clock set --sdkappid N``) has its total offset in
    ``app_offsets``. ``now(sdkappid)`` is the time that app's calls are judged by: one dict
    lookup, whichever app asks.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.app_offsets: dict[int | None, float] = {}  # total (server-wide included), per app

    def now(self, sdkappid: int | None = None) -> float:
        """The time of app ``sdkappid`` (without one: the server-wide time)."""
        return time.time() + self.app_offsets.get(sdkappid, self.offset)

    def latest(self, sdkappid: int | None = None) -> float:
        """The later of the wall clock and app ``sdkappid``'s time: when a kick takes effect,
        so that it revokes every UserSig signed until now by either clock, wherever the app's
        clock is moved before or after (docs/emulator.md)."""
        return max(time.time(), self.now(sdkappid))

    def offset_of(self, sdkappid: int | None = None) -> float:
        """The total offset of app ``sdkappid`` from the wall clock, in seconds."""
        return self.app_offsets.get(sdkappid, self.offset)

    def set_offsets(self, offset: float, app_offsets: Mapping[int, float]) -> None:
        """Replace every offset at once: the server-wide one and the apps' totals."""
        self.app_offsets = {sdkappid: total for sdkappid, total in app_offsets.items()
                            if total != offset}
        self.offset = offset
