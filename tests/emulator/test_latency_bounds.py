"""Latency faults cannot exhaust the server (docs/emulator.md, "Bounds").

Reproduced on the old code: 100 rules × 120 s per call, calls kept waiting after their client
left, any number of calls held at once, a database write for every rule evaluation.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import own_postgres_database

from timserver.emulator import faults
from timserver.emulator.faults import MAX_CALL_LATENCY_MS, MAX_HELD_CALLS, FaultRule, FaultSpec
from timserver.protocol.commands import BY_NAME
from timserver.storage import App
from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow  # servers in child processes

CHECK = {"CheckItem": [{"UserID": "administrator"}]}


class _Recorder(faults.Holds):
    """The real ``Holds`` bookkeeping, with the sleep recorded instead of slept."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: list[float] = []

    async def wait(self, sdkappid: int, seconds: float, disconnected: Any) -> None:
        self.waited.append(seconds)


async def test_the_latency_of_all_rules_together_is_capped() -> None:
    rules = [FaultRule(i, 1, FaultSpec(latency_ms=120_000), None, 0, 0.0) for i in range(100)]
    holds = _Recorder()

    async def serve(cmd: Any, app: Any, request: Any) -> bytes:
        return b"served"

    cmd = BY_NAME["account_check"]
    app = App(sdkappid=1, key="k" * 64, edition="developer", admins=("administrator",))
    answer = await faults.apply(rules, None, cmd, app, cmd.parse(CHECK), serve,  # type: ignore[arg-type]
                                holds=holds, tally=lambda rule_id: None)
    assert answer == b"served"
    assert holds.waited == [MAX_CALL_LATENCY_MS / 1000] and MAX_CALL_LATENCY_MS <= 30_000


def test_a_call_whose_client_hangs_up_is_cancelled(tim_server: TimServer) -> None:
    tim_server.add_fault(command="account_import", latency_ms=3000)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(tim_server.url("account_import"), json={"UserID": "gone"}, timeout=0.5)
    time.sleep(4)  # past the latency: had the call gone on, its handler would have run by now
    tim_server.clear_faults()
    answer = tim_server.call("account_check", {"CheckItem": [{"UserID": "gone"}]})
    assert answer["ResultItem"][0]["AccountStatus"] == "NotImported"


def test_held_calls_per_app_are_capped(tmp_path: Path) -> None:
    with start_server(folder=tmp_path, unlimited=True) as server:
        server.add_fault(command="account_check", latency_ms=4000)
        other = start_app(server)

        async def flood() -> list[tuple[int, float]]:
            limits = httpx.Limits(max_connections=MAX_HELD_CALLS + 10)
            async with httpx.AsyncClient(timeout=20, limits=limits) as client:
                async def one() -> tuple[int, float]:
                    started = time.monotonic()
                    answer = (await client.post(server.url("account_check"), json=CHECK)).json()
                    return answer["ErrorCode"], time.monotonic() - started
                return list(await asyncio.gather(*(one() for _ in range(MAX_HELD_CALLS + 5))))

        results = asyncio.run(flood())
        refused = [took for code, took in results if code == 70169]
        served = [took for code, took in results if code == 0]
        assert len(served) == MAX_HELD_CALLS and len(refused) == 5
        assert max(refused) < 3.5  # refused at once, not after the latency
        # another app was never held
        answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                            params=other, json=CHECK, timeout=5).json()
        assert answer["ErrorCode"] == 0


def start_app(server: TimServer) -> dict[str, str]:
    """The query of another app's admin on the same server."""
    import json
    import random

    from timserver import usersig

    made = json.loads(server.cli("app", "create", "--json").stdout)
    return {"sdkappid": str(made["sdkappid"]), "identifier": "administrator",
            "usersig": usersig.generate(made["sdkappid"], made["key"], "administrator", 3600,
                                         now=int(time.time())),
            "random": str(random.randrange(2**32)), "contenttype": "json"}


def test_a_rule_firing_on_every_call_writes_nothing_per_call(tmp_path: Path) -> None:
    import asyncpg

    with own_postgres_database("timserver_latency") as url, \
            start_server(folder=tmp_path, db=url, unlimited=True) as server:
        server.add_fault(command="account_check", code=70202)

        async def updates() -> int:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                value = await conn.fetchval("SELECT n_tup_upd FROM pg_stat_user_tables "
                                            "WHERE relname = 'fault_rules'")
                return int(value or 0)
            finally:
                await conn.close()

        before = asyncio.run(updates())
        for _ in range(30):
            assert server.call("account_check", CHECK)["ErrorCode"] == 70202
        time.sleep(0.8)  # statistics reach pg_stat_user_tables within ~0.5 s
        written = asyncio.run(updates()) - before
        assert written <= 3  # the batched count: a write per half second, not one per call
        assert server.faults()[0]["Matched"] == 30  # nothing lost
