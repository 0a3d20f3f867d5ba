"""Window pacing against a real server (issue 15, item 9b): a window's calls leave together at
its start, never one too many for the server's strict one-second sliding window.

The server's limiter is the judge (NO_RETRY: a single 60007 would raise). The one timing bound
is loose: pacing that spreads calls over the window (the former 99 % pace) cannot have the
window's last answer back before 95 % of a second has passed; sending them together does.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
from sdk_support import ImApp

from timserver.client import NO_RETRY

LIMIT = 20  # calls per second, set on the server for account_check
BODY = {"CheckItem": [{"UserID": "a"}]}


async def test_a_windows_calls_leave_together_and_none_is_refused(im: ImApp) -> None:
    im.set_limit("account_check", LIMIT)
    answered: list[float] = []
    async with im.aclient(rates={"account_check": LIMIT}, retry=NO_RETRY,
                          concurrency=64) as client:
        async def one() -> None:
            await client.account_check(BODY)
            answered.append(time.monotonic())
        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(3 * LIMIT)))
    assert client.stats.requests == 3 * LIMIT and client.stats.retries == 0  # no 60007
    answered.sort()
    assert answered[LIMIT - 1] - started < 0.9  # the first window's calls went together
    # The next window's first answer cannot come before a second after the first window's.
    assert answered[LIMIT] - answered[0] > 1.0


def test_the_sync_client_paces_by_windows_too(im: ImApp) -> None:
    im.set_limit("account_check", LIMIT)
    with im.client(rates={"account_check": LIMIT}, retry=NO_RETRY) as client:
        started = time.monotonic()
        for _ in range(LIMIT + 1):
            client.account_check(BODY)
        took = time.monotonic() - started
    assert client.stats.retries == 0 and took > 1.0  # the 21st waited for the window


def rate_limited(im: ImApp, command: str) -> float:
    """The server's count of 60007 answers to ``command`` (all apps; the tests run one at a time)."""
    text = httpx.get(f"{im.endpoint}/metrics", timeout=10).text
    found = re.search(rf'^timserver_rate_limited_total\{{command="{command}"\}} (\S+)$', text,
                      re.M)
    return float(found.group(1)) if found else 0.0


def test_a_burst_paced_bulk_import_is_never_refused(im: ImApp, tmp_path: Path) -> None:
    """`timserver accounts import` at a low limit, a whole window in flight at once (concurrency
    = the limit): the server's own count of 60007 answers stays where it was, and with no retry
    allowed a single refusal would have stopped the run (exit status 3)."""
    im.set_limit("multiaccount_import", LIMIT)
    source = tmp_path / "burst.txt"
    source.write_text("".join(f"burst_{n:05d}\n" for n in range(3 * LIMIT * 100 + 1)))
    before = rate_limited(im, "multiaccount_import")
    run = im.accounts("import", str(source), "--no-progress", "--retries", "0",
                      "--rate", f"multiaccount_import={LIMIT}", "--concurrency", str(LIMIT))
    assert run.returncode == 0, run.stderr
    assert "6,001 of 6,001 accounts done" in run.stderr and "retries" not in run.stderr
    assert rate_limited(im, "multiaccount_import") == before
    took = float(re.search(r"this run [\d,]+ in ([\d.]+) s", run.stderr).group(1))  # type: ignore[union-attr]
    assert took >= 3.0  # 61 calls at 20/s: four windows, the last one starts 3 s in
