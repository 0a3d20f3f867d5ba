"""The limiter's semantics (docs/protocol.md §8.1): at most RATE accepted in any 1-second window, strictly."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from timserver.service.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_is_capped_then_window_slides() -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    assert [lim.try_acquire("k", 3) for _ in range(5)] == [True, True, True, False, False]
    clock.t += 0.999
    assert not lim.try_acquire("k", 3)
    clock.t += 0.002  # the first three leave the window
    assert [lim.try_acquire("k", 3) for _ in range(4)] == [True, True, True, False]


def test_refusals_do_not_count() -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    assert lim.try_acquire("k", 1)
    for _ in range(100):
        clock.t += 0.009
        assert not lim.try_acquire("k", 1)
    clock.t += 0.2
    assert lim.try_acquire("k", 1)


def test_zero_is_unlimited_and_keys_are_independent() -> None:
    lim = SlidingWindowLimiter(clock=FakeClock())
    assert all(lim.try_acquire("a", 0) for _ in range(10_000))
    assert lim.try_acquire("b", 1) and not lim.try_acquire("b", 1)
    assert lim.try_acquire("c", 1)


def test_no_calendar_second_edge() -> None:
    """A fixed-window limiter would accept 2×RATE around a second boundary; this one does not."""
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    clock.t = 1000.9
    assert sum(lim.try_acquire("k", 10) for _ in range(10)) == 10
    clock.t = 1001.1
    assert sum(lim.try_acquire("k", 10) for _ in range(10)) == 0


@settings(max_examples=200)
@given(rate=st.integers(1, 50), gaps=st.lists(st.floats(0, 0.3), min_size=1, max_size=400))
def test_any_one_second_window_holds_at_most_rate(rate: int, gaps: list[float]) -> None:
    clock = FakeClock()
    lim = SlidingWindowLimiter(clock=clock)
    accepted = []
    for gap in gaps:
        clock.t += gap
        if lim.try_acquire("k", rate):
            accepted.append(clock.t)
    for i, start in enumerate(accepted):  # every window (start-1, start] ...
        inside = [t for t in accepted[: i + 1] if t > start - 1.0]
        assert len(inside) <= rate


@settings(max_examples=100)
@given(rate=st.integers(1, 500), seed=st.integers(0, 2**32))
def test_client_pacing_at_95_percent_is_never_refused(rate: int, seed: int) -> None:
    clock = FakeClock()
    clock.t += random.Random(seed).random()
    lim = SlidingWindowLimiter(clock=clock)
    interval = 1.0 / (0.95 * rate)
    for _ in range(3 * rate + 5):
        assert lim.try_acquire("k", rate)
        clock.t += interval
