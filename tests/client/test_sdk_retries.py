"""Retries with backoff on the retryable codes (docs/protocol.md §6.3) and on transport errors, bounded.

The server is made to fail for real: its rate limit (60007), and fault rules of the emulator
(`timserver faults add`: 70500, 70169, a dropped connection).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from sdk_support import ImApp
from support import free_port, uid

from timserver.client import ApiError, Client, NetworkError, Retry

pytestmark = pytest.mark.slow

FAST = Retry(attempts=6, backoff=0.05, max_backoff=0.5)


def test_rate_limit_refusals_are_retried_until_accepted(im: ImApp) -> None:
    im.set_limit("account_check", 2)
    # No client-side pacing: the server's limiter answers 60007 and the client backs off.
    with im.client(rates={"account_check": 0}, retry=Retry(attempts=20, backoff=0.1,
                                                           max_backoff=0.5)) as client:
        for _ in range(3):  # the third call comes inside the second of the first two
            assert client.account_check(CheckItem=[{"UserID": "a"}]).ResultItem[0].ResultCode == 0
    assert client.stats.retried[60007] >= 1
    assert client.stats.requests == 3 + client.stats.retries


def test_retries_are_bounded(im: ImApp) -> None:
    im.set_limit("account_check", 1)
    with im.client(rates={"account_check": 0}, retry=Retry(attempts=3, backoff=0.01)) as client:
        client.account_check(CheckItem=[{"UserID": "a"}])
        with pytest.raises(ApiError) as refused:  # three tries within the same second
            client.account_check(CheckItem=[{"UserID": "a"}])
    assert refused.value.code == 60007 and refused.value.attempts == 3 and refused.value.retryable
    assert client.stats.requests == 4 and client.stats.retried[60007] == 2


@pytest.mark.parametrize("code", [70500, 70169])
def test_injected_server_errors_are_retried(im: ImApp, code: int) -> None:
    im.fault("--command", "account_check", "--code", str(code), "--times", "3")
    with im.client(retry=FAST) as client:
        answer = client.account_check(CheckItem=[{"UserID": im.admin}])
    assert answer.ResultItem[0].AccountStatus == "Imported"
    assert client.stats.retried[code] == 3 and client.stats.requests == 4


async def test_injected_errors_are_retried_by_concurrent_async_calls(im: ImApp) -> None:
    im.fault("--command", "multiaccount_import", "--code", "70500", "--times", "4")
    users = [uid() for _ in range(6)]
    async with im.aclient(retry=FAST) as client:
        answers = await asyncio.gather(*(client.multiaccount_import(Accounts=[u]) for u in users))
        check = await client.account_check(CheckItem=[{"UserID": u} for u in users])
    assert all(a.FailAccounts == [] for a in answers)
    assert {i.AccountStatus for i in check.ResultItem} == {"Imported"}
    assert client.stats.retried[70500] == 4


def test_a_code_that_never_clears_fails_after_the_last_attempt(im: ImApp) -> None:
    im.fault("--command", "kick", "--code", "70500")
    with im.client(retry=Retry(attempts=3, backoff=0.01)) as client:
        with pytest.raises(ApiError) as failed:
            client.kick(UserID=im.admin)
    assert (failed.value.code, failed.value.command, failed.value.attempts) == (70500, "kick", 3)
    assert client.stats.requests == 3


def test_non_retryable_codes_are_not_retried(im: ImApp) -> None:
    im.fault("--command", "account_check", "--code", "70402", "--times", "1")
    with im.client(retry=FAST) as client, pytest.raises(ApiError) as failed:
        client.account_check(CheckItem=[{"UserID": "a"}])
    assert failed.value.code == 70402 and client.stats.requests == 1


def test_dropped_connections_are_retried(im: ImApp) -> None:
    im.fault("--command", "account_check", "--drop", "--times", "2")
    with im.client(retry=FAST) as client:
        answer = client.account_check(CheckItem=[{"UserID": im.admin}])
    assert answer.ResultItem[0].AccountStatus == "Imported"
    assert client.stats.retried["network"] == 2 and client.stats.requests == 3


def test_no_server_at_all_is_a_network_error_after_the_retries(im: ImApp) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with Client(im.sdkappid, im.key, im.admin, nowhere,
                retry=Retry(attempts=3, backoff=0.01)) as client:
        with pytest.raises(NetworkError) as failed:
            client.account_check(CheckItem=[{"UserID": "a"}])
    assert failed.value.attempts == 3 and failed.value.status_code is None
    assert failed.value.command == "account_check" and client.stats.requests == 3
    assert im.key not in str(failed.value)


def test_a_server_that_comes_up_late_is_reached(im: ImApp) -> None:
    port = free_port()
    result: dict[str, object] = {}
    retry = Retry(attempts=40, backoff=0.1, max_backoff=0.5)  # up to ~15 s of patience
    with Client(im.sdkappid, im.key, im.admin, f"http://127.0.0.1:{port}", retry=retry) as client:
        def call() -> None:
            try:
                result["answer"] = client.account_check(CheckItem=[{"UserID": im.admin}])
            except Exception as exc:  # reported below
                result["error"] = exc
        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 10
        while client.stats.retries == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # the call is failing: nobody listens yet
        late = subprocess.Popen([sys.executable, "-m", "timserver", "serve", "--port", str(port),
                                 "--db", im.server.db, "--log-level", "warning", "--no-access-log"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            caller.join(timeout=30)
        finally:
            late.terminate()
            late.wait(timeout=10)
    assert "error" not in result, result
    assert result["answer"].ResultItem[0].AccountStatus == "Imported"  # type: ignore[attr-defined]
    assert client.stats.retried["network"] >= 1
