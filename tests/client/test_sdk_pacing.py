"""Client-side pacing: all the calls of one client, from any task or thread, share each command's
pace, so that a client that knows the limit is never refused (60007) by the server's limiter.

No timing is asserted (that lives in bench/); the server's own limiter is the judge.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from sdk_support import ImApp

from timserver.client import NO_RETRY

pytestmark = pytest.mark.slow

LIMIT = 5  # calls per second, set on the server for account_check
BODY = {"CheckItem": [{"UserID": "a"}]}


async def test_concurrent_tasks_share_the_pace(im: ImApp) -> None:
    im.set_limit("account_check", LIMIT)
    # headroom 0.8: 4 calls/s, a quarter of a second of margin for a loaded test machine.
    async with im.aclient(rates={"account_check": LIMIT}, headroom=0.8, retry=NO_RETRY) as client:
        answers = await asyncio.gather(*(client.account_check(BODY) for _ in range(10)))
    assert len(answers) == 10  # with NO_RETRY a single 60007 would have raised
    assert client.stats.requests == 10 and client.stats.retries == 0


def test_threads_share_the_pace(im: ImApp) -> None:
    im.set_limit("account_check", LIMIT)
    errors: list[Exception] = []
    with im.client(rates={"account_check": LIMIT}, headroom=0.8, retry=NO_RETRY) as client:
        def work() -> None:
            try:
                for _ in range(2):
                    client.account_check(BODY)
            except Exception as exc:  # reported below
                errors.append(exc)
        threads = [threading.Thread(target=work) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert errors == [] and client.stats.requests == 10


async def test_without_pacing_the_same_burst_is_refused(im: ImApp) -> None:
    """The control experiment: the server does enforce the limit the pacing respects."""
    im.set_limit("account_check", LIMIT)
    async with im.aclient(rates={"account_check": 0}, retry=NO_RETRY) as client:
        outcomes = await asyncio.gather(*(client.account_check(BODY) for _ in range(10)),
                                        return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) >= 10 - LIMIT
    assert {getattr(o, "code", None) for o in refused} == {60007}


async def test_default_pace_follows_the_command_table(im: ImApp) -> None:
    """No rate given: the client paces to the table's default (account_check 100/s), which is
    the server's default limit, so a burst of 150 checks (1.5 s worth) has no refusal."""
    async with im.aclient(headroom=0.8, retry=NO_RETRY) as client:
        await asyncio.gather(*(client.account_check(BODY) for _ in range(150)))
    assert client.stats.requests == 150 and client.stats.retries == 0
