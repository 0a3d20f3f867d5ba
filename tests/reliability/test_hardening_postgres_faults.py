"""Issue 12, item 5: PostgreSQL connections killed under load never make an answer that is not
Tencent's envelope (docs/security.md, docs/reliability.md).

Before the fix, an asyncpg error that is not a PostgresError nor an InterfaceError
(``InternalClientError: cannot switch to state 12; another operation (2) is in progress``, from a
pooled connection reused after the server had killed it) escaped the storage layer and became a
plain-text HTTP 500.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
from reliability_support import Server, create_apps, log_defects, record, v4_query
from support import own_postgres_database

A = 1400007151
SECONDS = 12


def test_pg_terminate_backend_under_load_is_only_ever_answered_with_the_envelope(
        tmp_path: Path) -> None:
    with own_postgres_database("timserver_kill") as db:
        (app,) = create_apps(db, [{"sdkappid": A}])
        server = Server(db, tmp_path, "--no-access-log", log_level="warning")
        codes: Counter[int] = Counter()
        bad: list[str] = []
        stop = threading.Event()

        def caller() -> None:
            with httpx.Client(base_url=server.base_url, timeout=15) as client:
                while not stop.is_set():
                    resp = client.post(f"/v4/im_open_login_svc/account_check?{v4_query(app)}",
                                       content=b'{"CheckItem":[{"UserID":"administrator"}]}')
                    try:
                        assert resp.status_code == 200
                        assert resp.headers["content-type"].startswith("application/json")
                        data = resp.json()
                        assert set(data) >= {"ActionStatus", "ErrorCode", "ErrorInfo"}
                        codes[data["ErrorCode"]] += 1
                    except (AssertionError, ValueError, KeyError):
                        bad.append(f"HTTP {resp.status_code}: {resp.text[:200]}")

        async def terminate() -> int:
            killed = 0
            conn = await asyncpg.connect(db, timeout=5)
            try:
                started = time.monotonic()
                while time.monotonic() - started < SECONDS:
                    killed += await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    await asyncio.sleep(0.5)
            finally:
                await conn.close()
            return killed

        threads = [threading.Thread(target=caller) for _ in range(4)]
        try:
            for t in threads:
                t.start()
            killed = asyncio.run(terminate())
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            server.stop()
        log = server.log()
    assert bad == [], f"{len(bad)} answers were not the envelope, e.g. {bad[:3]}"
    assert set(codes) <= {0, 70500, 70169}, codes
    assert codes[0] > 100 and killed > 10
    assert [line for line in log_defects(log) if "Traceback" in line] == []
    record("pg_terminate_backend", seconds=SECONDS, connections_killed=killed,
           answers=dict(codes))


def _timer_of(port: int) -> str | None:
    """The kernel timer of this machine's TCP socket bound to local ``port`` (/proc/net/tcp):
    "02" is a keepalive timer."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "01":
                    return fields[5].split(":")[0]
    return None


def test_every_postgres_connection_has_tcp_keepalive() -> None:
    from timserver.storage.postgres import PostgresStorage

    async def timers(db: str) -> dict[int, str | None]:
        storage = PostgresStorage(db)
        await storage.open()
        try:
            ports = await storage.engine.run(lambda c: c.fetch(
                "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() "
                "AND client_port > 0"))
            return {row["client_port"]: _timer_of(row["client_port"]) for row in ports}
        finally:
            await storage.close()

    with own_postgres_database("timserver_keepalive") as db:
        found = asyncio.run(timers(db))
    assert len(found) >= 2, found  # the pool's connection and the LISTEN one
    assert set(found.values()) == {"02"}, found
