"""Issue 12, item 2: an instance whose PostgreSQL LISTEN connection dies without a sound does not
keep stale apps and kicks (docs/security.md, docs/deploy.md).

A loopback proxy between the server and PostgreSQL stops forwarding the one connection that sent
LISTEN: no reset, no close, its bytes just vanish (what a NAT or a proxy that forgot the flow
does). Before the fix the server heard nothing more and believed it was listening: a rotated key,
a kick, new admins were ignored for ever, and ``/readyz`` said ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from reliability_support import Server, create_apps, log_defects, record, v4_query
from support import own_postgres_database

from timserver.storage import make_storage
from timserver.storage.postgres.engine import HEARTBEAT_EVERY, HEARTBEAT_TIMEOUT, STALE_AFTER

A = 1400007161
NEW_KEY = "ab" * 32
# A change must reach the instance within the heartbeat's detection time or the cache's
# maximum age, whichever comes first, plus a reconnection; before the fix: never.
BOUND = max(STALE_AFTER, HEARTBEAT_EVERY + HEARTBEAT_TIMEOUT) + 3.0


class BlackholeProxy:
    """A loopback TCP proxy (asyncio, in a thread of its own) that can silently stop forwarding
    the connections that sent LISTEN, leaving both of their sockets open."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.flows: list[dict[str, Any]] = []
        self.swallow_next_listen = False  # blackhole the next flow as soon as it sends LISTEN
        self.server = self._call(asyncio.start_server(self._flow, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _flow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        flow = {"listen": False, "dead": False, "closed": False, "writers": (writer, up_writer)}
        self.flows.append(flow)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, outbound: bool) -> None:
            try:
                while data := await src.read(65536):
                    if outbound and b"LISTEN" in data:
                        flow["listen"] = True
                        if self.swallow_next_listen:
                            self.swallow_next_listen = False
                            flow["dead"] = True
                    if not flow["dead"]:
                        dst.write(data)
                        await dst.drain()
            except OSError:
                pass
            if not flow["dead"]:  # a dead flow's other side is never told
                dst.close()
        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        flow["closed"] = True

    def listeners(self) -> int:
        return sum(1 for f in self.flows if f["listen"] and not f["dead"] and not f["closed"])

    def blackhole_listeners(self) -> int:
        """Stop forwarding every live LISTEN flow, silently; how many."""
        deadline = time.monotonic() + 10
        while not self.listeners() and time.monotonic() < deadline:  # one is (re)connecting
            time.sleep(0.05)
        dead = 0
        for flow in self.flows:
            if flow["listen"] and not flow["dead"] and not flow["closed"]:
                flow["dead"] = True
                dead += 1
        return dead

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for flow in self.flows:
                for w in flow["writers"]:
                    w.close()
            flows = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in flows:
                task.cancel()
            await asyncio.gather(*flows, return_exceptions=True)
        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _until(what: Callable[[], bool], bound: float = BOUND) -> float:
    """Seconds until ``what()`` holds; fails after ``bound``."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if what():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {bound:g} s")


def test_a_silently_dead_listen_connection_is_noticed_and_nothing_stays_stale(
        tmp_path: Path) -> None:
    with own_postgres_database("timserver_listen") as db:
        (app,) = create_apps(db, [{"sdkappid": A}])
        target = urlsplit(db)
        proxy = BlackholeProxy(target.hostname or "127.0.0.1", target.port or 5432)
        server = Server(db.replace(f":{target.port}/", f":{proxy.port}/"), tmp_path,
                        "--no-access-log", log_level="warning")
        figures: dict[str, float] = {}
        try:
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                def code(as_app: Any, identifier: str = "administrator",
                         sig: str | None = None) -> int:
                    resp = client.post(
                        f"/v4/im_open_login_svc/account_check?{v4_query(as_app, identifier, sig)}",
                        content=b'{"CheckItem":[{"UserID":"administrator"}]}')
                    return resp.json()["ErrorCode"]

                def ready() -> dict[str, Any]:
                    resp = client.get("/readyz")
                    assert resp.status_code == 200, resp.text  # degraded is still ready
                    return resp.json()

                assert code(app) == 0
                _until(lambda: ready()["checks"].get("listener") is True)

                # 1. A change nobody announces (no NOTIFY) is seen once the cache is too old.
                asyncio.run(_sql(db, "UPDATE apps SET limits = '{\"account_check\": 1}' "
                                     "WHERE sdkappid = $1", A, bump=True))
                figures["unannounced_change_s"] = _until(
                    lambda: [code(app) for _ in range(3)].count(60007) >= 1)
                asyncio.run(_sql(db, "UPDATE apps SET limits = '{}' WHERE sdkappid = $1", A,
                                 bump=True))
                _until(lambda: [code(app) for _ in range(3)] == [0, 0, 0])

                # 2. The LISTEN connection goes silent; the key is rotated.
                assert proxy.blackhole_listeners() == 1
                rotated = dataclasses.replace(app, key=NEW_KEY)
                asyncio.run(_storage(db, lambda st: st.update_app(A, key=NEW_KEY)))
                figures["rotate_key_s"] = _until(lambda: code(app) == 70009)
                assert code(rotated) == 0
                # /readyz reported the listener while it was down, and it is back
                assert "did not answer a heartbeat" in server.log()
                _until(lambda: ready()["checks"].get("listener") is True)

                # 3. Silent again; the admin is kicked: UserSigs signed before are refused.
                assert proxy.blackhole_listeners() == 1
                old_sig = _sig(rotated, issued=int(time.time()) - 60)
                assert code(rotated, sig=old_sig) == 0
                asyncio.run(_storage(db, lambda st: st.kick(A, "administrator",
                                                            int(time.time()))))
                figures["kick_s"] = _until(lambda: code(rotated, sig=old_sig) == 70005)
                time.sleep(1.1)  # a UserSig signed in a later second than the kick works
                assert code(rotated) == 0

                # 4. Silent again; new admins.
                assert proxy.blackhole_listeners() == 1
                assert code(rotated, "second_admin") == 70403
                asyncio.run(_storage(db, lambda st: st.update_app(
                    A, admins=["administrator", "second_admin"])))
                figures["set_admins_s"] = _until(lambda: code(rotated, "second_admin") == 0)
                # ...and /readyz says when the listener is down, without failing readiness
                assert proxy.blackhole_listeners() == 1
                _until(lambda: ready()["checks"].get("listener") is False)
                _until(lambda: ready()["checks"].get("listener") is True)

                # 5. The new LISTEN connection goes silent while it is being set up: the set-up
                # gives up in time and the next one takes its place.
                proxy.swallow_next_listen = True
                assert proxy.blackhole_listeners() == 1
                _until(lambda: ready()["checks"].get("listener") is False)
                figures["relisten_after_a_silent_setup_s"] = _until(
                    lambda: ready()["checks"].get("listener") is True, bound=BOUND + 6)
                assert not proxy.swallow_next_listen  # the set-up did meet the blackhole
        finally:
            server.stop()
            proxy.close()
        assert log_defects(server.log()) == []
        record("listen_blackholed", bound_s=BOUND, **{k: round(v, 2) for k, v in figures.items()})


def _sig(app: Any, issued: int) -> str:
    from timserver import usersig

    return usersig.generate(app.sdkappid, app.key, "administrator", 86400, now=issued)


async def _sql(db: str, statement: str, *args: Any, bump: bool) -> None:
    """A change made behind every server's back: no NOTIFY."""
    conn = await asyncpg.connect(db, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute(statement, *args)
            if bump:
                await conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")
    finally:
        await conn.close()


async def _storage_run(db: str, work: Callable[[Any], Any]) -> Any:
    storage = make_storage(db)
    await storage.open()
    try:
        return await work(storage)
    finally:
        await storage.close()


def _storage(db: str, work: Callable[[Any], Any]) -> Any:
    return _storage_run(db, work)

