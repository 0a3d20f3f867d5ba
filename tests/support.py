"""Helpers shared by the tests: signing, query strings, an API caller, a live server."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from timserver import usersig
from timserver.protocol.commands import BY_NAME
from timserver.service import apps as app_rules
from timserver.storage import App
from timserver.testing import ServeProcess, free_port

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
SDKAPPID = 1400000000
ADMIN = "administrator"


def uid(prefix: str = "u") -> str:
    """A fresh UserID (≤ 32 bytes)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def sign(app: App, identifier: str | None = None, expire: int = 86400,
         now: int | None = None) -> str:
    return usersig.generate(app.sdkappid, app.key, identifier or app.admins[0], expire,
                            now=int(time.time()) if now is None else now)


def query(app: App, identifier: str | None = None, sig: str | None = None,
          **overrides: Any) -> dict[str, Any]:
    identifier = identifier or app.admins[0]
    params: dict[str, Any] = {
        "sdkappid": str(app.sdkappid), "identifier": identifier,
        "usersig": sig if sig is not None else sign(app, identifier),
        "random": str(random.randrange(2**32)), "contenttype": "json",
    }
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


class Api:
    """Calls /v4 commands as an app's admin, over whichever httpx client it is given."""

    def __init__(self, client: httpx.AsyncClient | httpx.Client, app: App,
                 expire: int = 86400) -> None:
        self.client = client
        self.app = app
        self.expire = expire  # of the admin UserSigs it signs (longer: for moved clocks)

    def url(self, command: str, service: str | None = None) -> str:
        declared = BY_NAME.get(command)
        return f"/v4/{service or (declared.service if declared else 'im_open_login_svc')}/{command}"

    async def control(self, path: str, body: Any, identifier: str | None = None,
                      sig: str | None = None) -> dict[str, Any]:
        """An extension endpoint under /_timserver/, signed like a /v4 call."""
        if sig is None and identifier is None:
            sig = sign(self.app, expire=self.expire)
        resp = await self.client.post(f"/_timserver/{path}", json=body,
                                      params=query(self.app, identifier, sig))
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def call(self, command: str, body: Any, **q: Any) -> dict[str, Any]:
        content = body if isinstance(body, bytes) else httpx.Request(
            "POST", "/", json=body).content
        if "usersig" not in q and "identifier" not in q:
            q["usersig"] = sign(self.app, expire=self.expire)
        resp = await self.client.post(self.url(command), params=query(self.app, **q),
                                      content=content)
        assert resp.status_code == 200, resp.text
        return resp.json()


async def make_app(server_app: Any, edition: str = "developer", admins: tuple[str, ...] = (ADMIN,),
                   sdkappid: int | None = None, unlimited: bool = True) -> App:
    st = server_app.state.storage
    app = await app_rules.create_app(st, sdkappid=sdkappid, admins=admins, edition=edition)
    if unlimited:
        for name in BY_NAME:
            app = await st.update_app(app.sdkappid, limit=(name, 0))
    return app


# --- a real server on a loopback port ----------------------------------------------------------


def cli(*args: str, db: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "timserver", *args]
    if db:
        cmd += ["--db", db]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


class LiveServer(ServeProcess):
    """``timserver serve --log-level warning EXTRA...`` on a free loopback port, ready: the
    process starter of ``timserver.testing`` (its output in a file, ``output()``, ``stop()``,
    ``kill()``, ``restart()``), for tests that make their own apps in ``db``."""

    def __init__(self, db: str, *extra: str) -> None:
        super().__init__(db, extra, log_level="warning", access_log=True)


# --- PostgreSQL for the tests -------------------------------------------------------------------

PG_ENV = "TIMSERVER_TEST_PG"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432"
# One database per test process: concurrent runs (developers, CI) never truncate each other's data.
PG_TEST_DB = f"timserver_test_{os.getpid()}"


def postgres_server_or_skip() -> str:
    """``$TIMSERVER_TEST_PG`` (default: this machine's server) if it answers.

    Where it does not, the PostgreSQL variants skip with a message that says how to enable them;
    under CI (``CI=true``) they fail instead, so that CI never passes without them.
    """
    import asyncio

    import asyncpg

    server = os.environ.get(PG_ENV, PG_DEFAULT).rstrip("/")

    async def prepare() -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=3)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_TEST_DB)
            if not exists:
                await conn.execute(f"CREATE DATABASE {PG_TEST_DB}")
        finally:
            await conn.close()
    try:
        asyncio.run(prepare())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        message = (f"PostgreSQL is not reachable at {server} ({exc}); set {PG_ENV}="
                   "postgresql://USER@HOST:PORT to a server where USER may create a database")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return server


def drop_postgres_database(server: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=3)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)")
        finally:
            await conn.close()
    asyncio.run(drop())


@contextlib.contextmanager
def own_postgres_database(prefix: str = "timserver_own") -> Iterator[str]:
    """A PostgreSQL database of the test's own (for tests that rewind schemas or keep
    snapshots in it), created here and dropped after, whatever the test left connected."""
    import asyncio

    import asyncpg

    server = postgres_server_or_skip()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def fresh_postgres_database(server: str) -> str:
    """The test database, emptied: every table but the migration ledger truncated."""
    import asyncio

    import asyncpg

    url = f"{server}/{PG_TEST_DB}"

    async def empty() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('schema_migrations', 'meta')")]
            if tables:
                await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))
        finally:
            await conn.close()
    asyncio.run(empty())
    return url


# --- a TCP proxy that tests can cut, slow down and restore --------------------------------------

class TcpProxy:
    """Forwards 127.0.0.1:port to a target, in a thread; ``cut()`` drops every connection and
    refuses new ones, ``slow(seconds)`` delays every chunk, ``restore()`` brings it back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._down = False
        self.delay = 0.0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import threading

        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._down = True
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def restore(self) -> None:
        self.delay = 0.0
        self._down = False

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._listener.close()
        self._thread.join(timeout=2)


# --- Redis for the tests ------------------------------------------------------------------------

REDIS_ENV = "TIMSERVER_TEST_REDIS"
REDIS_DEFAULT = "redis://127.0.0.1:6379/15"


def redis_or_skip() -> str:
    """``$TIMSERVER_TEST_REDIS`` if it answers; skip (fail under CI) otherwise."""
    import redis

    url = os.environ.get(REDIS_ENV, REDIS_DEFAULT)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {url} ({exc}); set {REDIS_ENV}=redis://HOST:PORT/DB"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url
