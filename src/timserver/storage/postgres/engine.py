"""The PostgreSQL engine (asyncpg): HOW timserver uses the database, nothing of WHAT it stores.

* A connection pool; ``run`` lends a connection to one piece of work (a transaction when it
  writes). Any driver or network failure becomes ``StorageError`` (answered 70500, retryable); a
  connection that failed is discarded, never handed to another call, and the pool reconnects by
  itself when the database is back. Every connection has TCP keepalive, so that a dead peer is
  noticed by the kernel too.
* Two things every call asks are kept here, with their invalidation in one place:

  - the *versions counter* (``versions``): app records and emulator state are cached by their
    users, keyed on it. A LISTEN connection hears ``NOTIFY timserver_apps`` from whoever changes
    an app or the emulator's state (``bump_apps_version``, ``bump_emulator_version``), so the
    counter costs no round trip per call; while that connection is down, the stored versions are
    read from the database instead. Our own such writes (``write_versioned``) are seen at once.
  - the *kicks cache* (``cached_kick``/``keep_kick``): every change to the kicks table sends
    ``NOTIFY timserver_kicks`` (``notify_kicks``), which empties the cache of every instance (our
    own changes, through ``write_kicks``, empty ours at once); while the LISTEN connection is
    down, each call reads the table.

* A LISTEN connection can die without a sound (a proxy or NAT that drops it sends no reset), and
  then nothing is heard while it looks open. So it runs ``SELECT 1`` every ``HEARTBEAT_EVERY``
  seconds; an answer late by ``HEARTBEAT_TIMEOUT`` ends it (caches dropped, calls read through,
  a new LISTEN connection is made). And whatever the heartbeat says, nothing cached is trusted for
  longer than ``STALE_AFTER``: the versions are read again, the kicks forgotten.

The queries are in ``store.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from .._migrations import scripts
from ..base import StorageError

log = logging.getLogger("timserver.storage.postgres")
T = TypeVar("T")

APPS_CHANNEL = "timserver_apps"
KICKS_CHANNEL = "timserver_kicks"
_KICKS_CACHED = 10_000  # (app, identifier) → latest kick, kept while LISTEN hears every change
_MIGRATION_LOCK = 0x74696D73  # advisory lock key: one instance migrates at a time
# Every failure asyncpg may raise: InternalClientError is neither of the first two ("cannot
# switch to state 12; another operation (2) is in progress", on a connection the server killed).
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                  OSError, ConnectionError, asyncio.TimeoutError)
# SQLSTATE classes after which the session itself is gone: connection exception, operator
# intervention (pg_terminate_backend, shutdown).
_SESSION_LOST = ("08", "57")

HEARTBEAT_EVERY = 2.0  # seconds between two SELECT 1 on the LISTEN connection
HEARTBEAT_TIMEOUT = 2.0  # seconds within which it must answer, else it is replaced
STALE_AFTER = 5.0  # seconds a cached version or kick is trusted, even while LISTEN is heard
# TCP keepalive on every connection: first probe after 10 s idle, then every 5 s, given up after
# 3 unanswered probes; unacknowledged data gives up after 20 s (TCP_USER_TIMEOUT).
_KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
_USER_TIMEOUT_MS = 20_000


def _keep_alive(sock: Any) -> None:
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no peer to lose
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE.items():
        if hasattr(socket, name):  # Linux, and most others under these names
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, _USER_TIMEOUT_MS)


class _Connection(asyncpg.Connection):
    """asyncpg's connection with TCP keepalive on its socket (asyncpg has no option for it; the
    server-side ``tcp_keepalives_*`` settings would be refused by poolers such as PgBouncer)."""

    def __init__(self, protocol: Any, transport: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, transport, *args, **kwargs)
        _keep_alive(transport.get_extra_info("socket"))


def _reusable(exc: BaseException, conn: Any) -> bool:
    """Whether a connection is fit for another call after ``exc``: only after an error that
    the server reported on a session that lives on (a constraint, a bad value...)."""
    if not isinstance(exc, asyncpg.PostgresError) or (exc.sqlstate or "")[:2] in _SESSION_LOST \
            or isinstance(exc, asyncpg.exceptions.FatalPostgresError):
        return False
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # closed under us, and already given back to the pool
        return False


def _discard(conn: Any) -> None:
    try:
        conn.terminate()  # the pool replaces it: no other call gets a broken session
    except asyncpg.InterfaceError:  # closed under us, and already given back to the pool
        pass


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection, after asyncpg's own (which rolls back an open
    transaction): nothing more. Its default, a round trip per release (unlock advisory locks,
    CLOSE ALL, UNLISTEN *, RESET ALL), undoes what this module never does: its advisory lock is
    transaction-scoped, it opens no cursor, sets nothing, and listens on its own connection."""


async def bump_apps_version(conn: asyncpg.Connection) -> None:
    """In a write: the apps changed. At commit every instance's versions counter moves."""
    await conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")
    await conn.execute(f"NOTIFY {APPS_CHANNEL}")  # delivered at commit


async def bump_emulator_version(conn: asyncpg.Connection) -> None:
    """In a write: fault rules or a clock offset changed (the same counter: see ``versions``)."""
    await conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'emulator_version'")
    await conn.execute(f"NOTIFY {APPS_CHANNEL}")  # delivered at commit


async def notify_kicks(conn: asyncpg.Connection) -> None:
    """In a write: the kicks table changed. At commit every instance forgets its kicks."""
    await conn.execute(f"NOTIFY {KICKS_CHANNEL}")  # delivered at commit


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # what ``cached_kick`` gives for a kick it does not keep


class PostgresEngine:
    """The pool, the LISTEN connection and its heartbeat, the versions counter, the kicks cache."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 command_timeout: float = 10.0) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._sizes = (min_size, max_size)
        self._command_timeout = command_timeout
        self._listener: asyncpg.Connection | None = None
        self._local_version = 0
        self._kicks_heard = 0  # bumped by each NOTIFY timserver_kicks, and by our own kicks
        self._kicks_seen = -1  # the _kicks_heard that _kicks is good for
        self._kicks: dict[tuple[int, str], int | None] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._heard_at = 0.0  # when the LISTEN connection last answered (monotonic)
        self._versions_seen: tuple[int, int] | None = None  # (apps, emulator) read last
        self._versions_read_at = -STALE_AFTER  # when (monotonic)
        self._kicks_since = 0.0  # when the kicks cache was last emptied (monotonic)
        self._closing = False

    # --- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._sizes[0], max_size=self._sizes[1],
                command_timeout=self._command_timeout, timeout=5, reset=_keep_session,
                connection_class=_Connection)
            async with self._pool.acquire(timeout=5) as conn:
                await self._migrate(conn)
        except _DRIVER_ERRORS as exc:
            await self.close()
            raise StorageError(f"cannot open PostgreSQL database: {exc}") from exc
        if not await self._listen():
            self._schedule_relisten()

    async def close(self) -> None:
        self._closing = True  # our own closing of the LISTEN connection is no loss
        for task in (self._listen_task, self._heartbeat_task):
            if task is not None:
                task.cancel()
        self._listen_task = self._heartbeat_task = None
        if self._listener is not None:
            try:
                await self._listener.close(timeout=2)
            except _DRIVER_ERRORS:
                pass
            self._listener = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 5)
            except _DRIVER_ERRORS:
                self._pool.terminate()
            self._pool = None

    @staticmethod
    async def _migrate(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                               "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, script in scripts("postgres"):
                if version not in done:
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                       version, time.time())

    async def _listen(self) -> bool:
        """Hold a LISTEN connection (with its heartbeat); False if it cannot be made now."""
        conn = None
        try:
            # The whole set-up is bounded: a connection that goes silent between its LISTENs
            # would otherwise hold the reconnection for ever (add_listener has no timeout).
            async with asyncio.timeout(5):
                conn = await asyncpg.connect(self.url, timeout=5, connection_class=_Connection)
                await conn.add_listener(APPS_CHANNEL, self._on_notify)
                await conn.add_listener(KICKS_CHANNEL, self._on_kicks_notify)
            conn.add_termination_listener(self._on_listener_lost)
        except _DRIVER_ERRORS as exc:
            log.warning("cannot LISTEN for app changes (%s); reading apps_version per call",
                        exc or exc.__class__.__name__)
            if conn is not None:
                conn.terminate()
            self._listener = None
            return False
        self._listener = conn
        self._heard_at = time.monotonic()
        self._local_version += 1  # anything may have changed while nobody listened
        self._kicks_heard += 1
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat(conn))
        return True

    async def _heartbeat(self, conn: asyncpg.Connection) -> None:
        """``SELECT 1`` on the LISTEN connection every few seconds: an answer proves that every
        NOTIFY sent before it was heard; no answer in time, and the connection is replaced."""
        while self._listener is conn:
            await asyncio.sleep(HEARTBEAT_EVERY)
            if self._listener is not conn:
                return
            try:
                await conn.fetchval("SELECT 1", timeout=HEARTBEAT_TIMEOUT)
            except _DRIVER_ERRORS as exc:
                self._lose_listener(conn, f"did not answer a heartbeat ({exc.__class__.__name__})")
                return
            self._heard_at = time.monotonic()

    def listening(self) -> bool:
        """Whether the LISTEN connection is up and answered its last heartbeat in time."""
        conn = self._listener
        return (conn is not None and not conn.is_closed()
                and time.monotonic() - self._heard_at < HEARTBEAT_EVERY + HEARTBEAT_TIMEOUT + 1)

    def _on_notify(self, *args: Any) -> None:
        self._local_version += 1

    def _on_kicks_notify(self, *args: Any) -> None:
        self._kicks_heard += 1

    def _on_listener_lost(self, conn: asyncpg.Connection) -> None:
        self._lose_listener(conn, "was closed")

    def _lose_listener(self, conn: asyncpg.Connection, why: str) -> None:
        if self._closing or self._listener is not conn:
            return
        log.warning("the LISTEN connection %s; reading versions and kicks from the database "
                    "until it is back", why)
        self._listener = None
        self._local_version += 1  # whatever was missed: every cache is dropped
        self._kicks_heard += 1
        conn.terminate()
        self._schedule_relisten()

    def _schedule_relisten(self) -> None:
        if self._listen_task is None or self._listen_task.done():
            self._listen_task = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        while not self._closing and self._pool is not None and self._listener is None:
            await asyncio.sleep(1.0)
            if await self._listen():
                return

    # --- helpers ------------------------------------------------------------------------------
    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                   write: bool = False) -> T:
        if self._pool is None:
            raise StorageError("storage is not open")
        await asyncio.sleep(0)  # runs_inline (store.py): asyncpg is reached only after a first wait
        pool = self._pool
        try:
            conn = await pool.acquire(timeout=5)
        except _DRIVER_ERRORS as exc:
            raise StorageError(f"PostgreSQL: {exc}") from exc
        try:
            if not write:
                result = await work(conn)
            else:
                async with conn.transaction():
                    result = await work(conn)
        except BaseException as exc:
            if not _reusable(exc, conn):
                _discard(conn)
            await self._release(pool, conn)
            if isinstance(exc, asyncpg.UniqueViolationError):
                raise
            if isinstance(exc, _DRIVER_ERRORS):
                raise StorageError(f"PostgreSQL: {exc.__class__.__name__}: {exc}") from exc
            raise
        await self._release(pool, conn)
        return result

    @staticmethod
    async def _release(pool: asyncpg.Pool, conn: Any) -> None:
        """Back to the pool; a connection that cannot be reset is terminated by the pool, and
        that is no failure of the call (its work is done, or failed already)."""
        try:
            await pool.release(conn)
        except _DRIVER_ERRORS as exc:
            log.debug("a connection could not be reset and was closed: %r", exc)


    async def ping(self) -> None:
        await self.run(lambda c: c.fetchval("SELECT 1"))

    async def health(self) -> dict[str, bool]:
        """What /readyz reports beyond ``ping``: whether LISTEN is heard (while it is not, calls
        read versions and kicks from the database: correct, at a round trip each)."""
        return {"listener": self.listening()}

    def pool_stats(self) -> tuple[int, int]:
        """(connections, idle connections) of the pool, for the metrics."""
        if self._pool is None:
            return 0, 0
        return self._pool.get_size(), self._pool.get_idle_size()

    # --- the versions counter -----------------------------------------------------------------
    async def write_versioned(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """A write that bumps a stored version: this instance sees the change at its next call,
        without waiting for its own NOTIFY to come back."""
        try:
            return await self.run(work, write=True)
        finally:
            self._versions_read_at = float("-inf")  # the next versions() reads them

    async def versions(self) -> int:
        """A counter that moves whenever apps or emulator state may have changed: with each
        NOTIFY heard, and when the stored versions are read and differ from the last read.
        They are read on every call while LISTEN is not heard, else once per STALE_AFTER."""
        now = time.monotonic()
        if self.listening() and now - self._versions_read_at < STALE_AFTER:
            return self._local_version
        row = await self.run(lambda c: c.fetchrow(
            "SELECT (SELECT value FROM meta WHERE name = 'apps_version') AS apps, "
            "(SELECT value FROM meta WHERE name = 'emulator_version') AS emulator"))
        seen = (row["apps"] or 0, row["emulator"] or 0)
        if seen != self._versions_seen:
            self._versions_seen = seen
            self._local_version += 1
        self._versions_read_at = now
        return self._local_version

    # --- the kicks cache ----------------------------------------------------------------------
    def cached_kick(self, key: tuple[int, str]) -> tuple[Any, int]:
        """The kick time kept for ``key`` (``MISSING`` when none is), and the ticket with which
        a time read now may be kept (``keep_kick``). Kept only while the LISTEN connection is
        up: kicks are rare, and every change to the kicks table announces itself."""
        if not self.listening():
            return MISSING, -1
        heard = self._kicks_heard
        now = time.monotonic()
        if self._kicks_seen != heard or now - self._kicks_since > STALE_AFTER:
            self._kicks.clear()
            self._kicks_seen = heard
            self._kicks_since = now
        return self._kicks.get(key, MISSING), heard

    def keep_kick(self, key: tuple[int, str], value: int | None, ticket: int) -> None:
        """Keep a kick time read after ``cached_kick`` gave ``ticket``, unless a kick was
        announced meanwhile (or LISTEN was not heard then)."""
        if ticket >= 0 and self._kicks_heard == ticket:
            if len(self._kicks) >= _KICKS_CACHED:
                self._kicks.clear()
            self._kicks[key] = value

    async def write_kicks(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """A write that changes kicks (it sends ``notify_kicks``): this instance forgets its
        kicks now, not when its NOTIFY comes back."""
        try:
            return await self.run(work, write=True)
        finally:
            self._kicks_heard += 1
