"""The service's sense of time, in one place so that it can be shifted on purpose."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock seconds plus an offset (the emulator's controllable clock)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset
