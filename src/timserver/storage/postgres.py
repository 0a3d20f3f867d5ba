"""PostgreSQL storage (asyncpg, with a connection pool): accounts shared by many instances.

* Every write is one transaction; PostgreSQL's commit (``synchronous_commit`` on, the default)
  makes it durable before the caller is answered.
* Rows are written in UserID order, so concurrent batches over the same accounts take their row
  locks in one order and never deadlock.
* ``account_count`` moves with each write; only a trial app (which has a cap) locks its app row
  while it imports, so that two instances cannot both take the last place.
* App records are cached by the service layer, keyed on ``apps_version``. A LISTEN connection
  hears ``NOTIFY timserver_apps`` from whoever changes an app, so the version costs no round trip
  per call; while that connection is down, the version is read from the database instead.
* Kicks (``kicked_at``, read by every call) are cached the same way: every change to the kicks
  table sends ``NOTIFY timserver_kicks``, which empties the cache of every instance (our own
  changes empty ours at once); while the LISTEN connection is down, each call reads the table.
* A LISTEN connection can die without a sound (a proxy or NAT that drops it sends no reset), and
  then nothing is heard while it looks open. So it runs ``SELECT 1`` every ``HEARTBEAT_EVERY``
  seconds; an answer late by ``HEARTBEAT_TIMEOUT`` ends it (caches dropped, calls read through,
  a new LISTEN connection is made). And whatever the heartbeat says, nothing cached is trusted for
  longer than ``STALE_AFTER``: the versions are read again, the kicks forgotten. Every connection
  also has TCP keepalive, so that a dead peer is noticed by the kernel too.
* Any driver or network failure becomes ``StorageError`` (answered 70500, retryable); a
  connection that failed is discarded, never handed to another call, and the pool reconnects by
  itself when the database is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from ._migrations import scripts
from .base import (
    Account,
    AccountWrite,
    App,
    AppExists,
    Callback,
    Device,
    DeviceChange,
    FaultRecord,
    Merged,
    StorageError,
    callback_from_json,
    callback_json,
    pipelined_load,
)

log = logging.getLogger("timserver.storage.postgres")
T = TypeVar("T")

_CHANNEL = "timserver_apps"
_KICKS_CHANNEL = "timserver_kicks"
_KICKS_CACHED = 10_000  # (app, identifier) → latest kick, kept while LISTEN hears every change
_MIGRATION_LOCK = 0x74696D73  # advisory lock key: one instance migrates at a time
_APP_COLUMNS = "sdkappid, secret_key, edition, admins, limits, created_at, allow_delete, callback"
_APP_INSERT = "sdkappid, secret_key, edition, admins, limits, created_at"
_DEVICE_COLUMNS = "platform, status, inst_id, login_at"
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


def _app_from_row(row: Any) -> App:
    return App(sdkappid=row["sdkappid"], key=row["secret_key"], edition=row["edition"],
               admins=tuple(json.loads(row["admins"])), limits=json.loads(row["limits"]),
               created_at=row["created_at"], allow_delete=row["allow_delete"],
               callback=callback_from_json(row["callback"]))


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection, after asyncpg's own (which rolls back an open
    transaction): nothing more. Its default, a round trip per release (unlock advisory locks,
    CLOSE ALL, UNLISTEN *, RESET ALL), undoes what this module never does: its advisory lock is
    transaction-scoped, it opens no cursor, sets nothing, and listens on its own connection."""


class PostgresStorage:
    #: asyncpg enters ``asyncio.timeout`` scopes (pool acquire and release), which belong to the
    #: task they are entered in; ``_run`` waits once before it reaches asyncpg, so work started
    #: inline (``dispatch.within(eager=True)``) is in a task of its own by then. What needs no
    #: round trip (app records and kicks kept while LISTEN runs) costs no task at all.
    runs_inline = True

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
                await conn.add_listener(_CHANNEL, self._on_notify)
                await conn.add_listener(_KICKS_CHANNEL, self._on_kicks_notify)
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
    async def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                   write: bool = False) -> T:
        if self._pool is None:
            raise StorageError("storage is not open")
        await asyncio.sleep(0)  # see runs_inline: asyncpg is reached only after a first wait
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

    @staticmethod
    async def _bump_apps_version(conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")
        await conn.execute(f"NOTIFY {_CHANNEL}")  # delivered at commit

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"))

    async def health(self) -> dict[str, bool]:
        """What /readyz reports beyond ``ping``: whether LISTEN is heard (while it is not, calls
        read versions and kicks from the database: correct, at a round trip each)."""
        return {"listener": self.listening()}

    def pool_stats(self) -> tuple[int, int]:
        """(connections, idle connections) of the pool, for the metrics."""
        if self._pool is None:
            return 0, 0
        return self._pool.get_size(), self._pool.get_idle_size()

    # --- apps ---------------------------------------------------------------------------------
    async def apps_version(self) -> int:
        return await self._versions()

    async def _write_versioned(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """A write that bumps a stored version: this instance sees the change at its next call,
        without waiting for its own NOTIFY to come back."""
        try:
            return await self._run(work, write=True)
        finally:
            self._versions_read_at = float("-inf")  # the next _versions() reads them

    async def _versions(self) -> int:
        """A counter that moves whenever apps or emulator state may have changed: with each
        NOTIFY heard, and when the stored versions are read and differ from the last read.
        They are read on every call while LISTEN is not heard, else once per STALE_AFTER."""
        now = time.monotonic()
        if self.listening() and now - self._versions_read_at < STALE_AFTER:
            return self._local_version
        row = await self._run(lambda c: c.fetchrow(
            "SELECT (SELECT value FROM meta WHERE name = 'apps_version') AS apps, "
            "(SELECT value FROM meta WHERE name = 'emulator_version') AS emulator"))
        seen = (row["apps"] or 0, row["emulator"] or 0)
        if seen != self._versions_seen:
            self._versions_seen = seen
            self._local_version += 1
        self._versions_read_at = now
        return self._local_version

    async def create_app(self, app: App) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO apps ({_APP_INSERT}) VALUES ($1, $2, $3, $4, $5, $6)",
                app.sdkappid, app.key, app.edition, json.dumps(app.admins),
                json.dumps(app.limits), app.created_at or time.time())
            await _set_admins(conn, app.sdkappid, app.admins)
            await self._bump_apps_version(conn)
        try:
            await self._write_versioned(work)
        except asyncpg.UniqueViolationError:
            raise AppExists(f"an app with SDKAppID {app.sdkappid} already exists") from None

    async def get_app(self, sdkappid: int) -> App | None:
        row = await self._run(lambda c: c.fetchrow(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = $1", sdkappid))
        return _app_from_row(row) if row else None

    async def list_apps(self) -> list[App]:
        rows = await self._run(lambda c: c.fetch(
            f"SELECT {_APP_COLUMNS} FROM apps ORDER BY sdkappid"))
        return [_app_from_row(r) for r in rows]

    async def update_app(self, sdkappid: int, *, key: str | None = None,
                         edition: str | None = None, admins: Sequence[str] | None = None,
                         limit: tuple[str, int] | None = None,
                         allow_delete: bool | None = None, callback: Callback | None = None,
                         clear_callback: bool = False) -> App | None:
        async def work(conn: asyncpg.Connection) -> App | None:
            row = await conn.fetchrow(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = $1 FOR UPDATE", sdkappid)
            if row is None:
                return None
            app = _app_from_row(row)
            limits = dict(app.limits)
            if limit is not None:
                limits[limit[0]] = limit[1]
            new_admins = list(admins) if admins is not None else list(app.admins)
            await conn.execute(
                "UPDATE apps SET secret_key = $1, edition = $2, admins = $3, limits = $4 "
                "WHERE sdkappid = $5", key or app.key, edition or app.edition,
                json.dumps(new_admins), json.dumps(limits), sdkappid)
            if admins is not None:
                await _set_admins(conn, sdkappid, admins)
            if allow_delete is not None:
                await conn.execute("UPDATE apps SET allow_delete = $1 WHERE sdkappid = $2",
                                   allow_delete, sdkappid)
            if callback is not None or clear_callback:
                await conn.execute("UPDATE apps SET callback = $1 WHERE sdkappid = $2",
                                   callback_json(callback), sdkappid)
            await self._bump_apps_version(conn)
            return _app_from_row(await conn.fetchrow(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = $1", sdkappid))
        return await self._write_versioned(work)

    # --- accounts -----------------------------------------------------------------------------
    async def import_accounts(self, sdkappid: int, items: Sequence[AccountWrite],
                              max_accounts: int | None) -> list[bool]:
        async def work(conn: asyncpg.Connection) -> list[bool]:
            ids = list(dict.fromkeys(item.user_id for item in items))
            count = 0
            if max_accounts is not None:  # a cap: take the app row so places are counted once
                count = await conn.fetchval(
                    "SELECT account_count FROM apps WHERE sdkappid = $1 FOR UPDATE", sdkappid)
            known = {r["user_id"] for r in await conn.fetch(
                "SELECT user_id FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2::text[])",
                sdkappid, ids)}
            applied: list[bool] = []
            merged: dict[str, list[str | None]] = {}  # one row per UserID: last given value wins
            for item in items:
                if item.user_id not in known:
                    if max_accounts is not None and count >= max_accounts:
                        applied.append(False)
                        continue
                    known.add(item.user_id)
                    count += 1
                applied.append(True)
                row = merged.setdefault(item.user_id, [None, None])
                if item.nick is not None:
                    row[0] = item.nick
                if item.face_url is not None:
                    row[1] = item.face_url
            if merged:
                order = sorted(merged)  # one lock order for every writer: no deadlocks
                inserted = await conn.fetchval(
                    "WITH up AS (INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) "
                    "SELECT $1, u, n, f, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS t(u, n, f) "
                    "ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
                    "nick = coalesce(excluded.nick, accounts.nick), "
                    "face_url = coalesce(excluded.face_url, accounts.face_url) "
                    "RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM up",
                    sdkappid, order, [merged[u][0] for u in order], [merged[u][1] for u in order],
                    time.time())
                if inserted:
                    await conn.execute("UPDATE apps SET account_count = account_count + $1 "
                                       "WHERE sdkappid = $2", inserted, sdkappid)
            return applied
        return await self._run(work, write=True)

    async def bulk_load(self, sdkappid: int, rows: Iterable[AccountWrite], *,
                        batch_size: int = 50_000,
                        progress: Callable[[int], None] | None = None) -> int:
        async def load(merged: Merged) -> int:
            async def work(conn: asyncpg.Connection) -> int:
                # COPY into a scratch table, then one upsert from it (COPY itself cannot merge).
                await conn.execute(
                    'CREATE TEMP TABLE bulk_accounts (user_id TEXT COLLATE "C", nick TEXT, '
                    "face_url TEXT) ON COMMIT DROP")
                await conn.copy_records_to_table(
                    "bulk_accounts", columns=("user_id", "nick", "face_url"),
                    records=[(uid, nick, face) for uid, (nick, face) in sorted(merged.items())])
                created = await conn.fetchval(
                    "WITH up AS (INSERT INTO accounts (sdkappid, user_id, nick, face_url, "
                    "created_at) SELECT $1, user_id, nick, face_url, $2 FROM bulk_accounts "
                    "ORDER BY user_id ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
                    "nick = coalesce(excluded.nick, accounts.nick), "
                    "face_url = coalesce(excluded.face_url, accounts.face_url) "
                    "WHERE excluded.nick IS NOT NULL OR excluded.face_url IS NOT NULL "
                    "RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM up",
                    sdkappid, time.time())
                counted = await conn.execute("UPDATE apps SET account_count = account_count + $1 "
                                             "WHERE sdkappid = $2", created, sdkappid)
                if counted != "UPDATE 1":
                    raise StorageError(f"no app with SDKAppID {sdkappid}")
                return created
            return await self._run(work, write=True)

        return await pipelined_load(rows, batch_size, load, progress)

    async def existing(self, sdkappid: int, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        rows = await self._run(lambda c: c.fetch(
            "SELECT user_id FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2::text[])",
            sdkappid, list(user_ids)))
        return {r["user_id"] for r in rows}

    async def delete_accounts(self, sdkappid: int, user_ids: Sequence[str],
                              banned_until: float | None = None) -> list[bool]:
        if not user_ids:
            return []

        async def work(conn: asyncpg.Connection) -> list[bool]:
            # Lock the rows in UserID order first, as imports do: a DELETE alone locks them in
            # the order its plan reads them, and the two orders deadlocked under load.
            present = {r["user_id"] for r in await conn.fetch(
                "DELETE FROM accounts WHERE sdkappid = $1 AND user_id IN ("
                "SELECT user_id FROM accounts WHERE sdkappid = $1 AND is_admin = false "
                "AND user_id = ANY($2::text[]) ORDER BY user_id FOR UPDATE) RETURNING user_id",
                sdkappid, sorted(set(user_ids)))}
            if present:
                await conn.execute("UPDATE apps SET account_count = account_count - $1 "
                                   "WHERE sdkappid = $2", len(present), sdkappid)
                gone = sorted(present)
                await conn.execute("DELETE FROM devices WHERE sdkappid = $1 AND "
                                   "user_id = ANY($2::text[])", sdkappid, gone)
                if banned_until is not None:
                    await conn.execute(
                        "INSERT INTO deletion_bans (sdkappid, user_id, until) "
                        "SELECT $1, u, $3 FROM unnest($2::text[]) AS u "
                        "ON CONFLICT (sdkappid, user_id) DO UPDATE SET until = excluded.until",
                        sdkappid, gone, banned_until)
            deleted = []
            for uid in user_ids:
                deleted.append(uid in present)
                present.discard(uid)  # a second occurrence finds it gone
            return deleted
        return await self._run(work, write=True)

    async def kick(self, sdkappid: int, user_id: str, at: int) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            done = await conn.fetchval(  # with NOTIFY timserver_kicks (delivered at commit)
                "WITH k AS (INSERT INTO kicks (sdkappid, user_id, kicked_at) "
                "SELECT $1, $2, $3 WHERE EXISTS "
                "(SELECT 1 FROM accounts WHERE sdkappid = $1 AND user_id = $2) "
                "ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
                "kicked_at = greatest(kicks.kicked_at, excluded.kicked_at) RETURNING 1) "
                f"SELECT count(pg_notify('{_KICKS_CHANNEL}', '')) FROM k",
                sdkappid, user_id, at)
            return done > 0
        try:
            return await self._run(work, write=True)
        finally:
            self._kicks_changed()

    async def unkick(self, sdkappid: int, user_id: str | None = None) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            if user_id is None:
                gone = await conn.fetch("DELETE FROM kicks WHERE sdkappid = $1 RETURNING 1",
                                        sdkappid)
            else:
                gone = await conn.fetch("DELETE FROM kicks WHERE sdkappid = $1 AND user_id = $2 "
                                        "RETURNING 1", sdkappid, user_id)
            await conn.execute(f"NOTIFY {_KICKS_CHANNEL}")  # delivered at commit
            return len(gone)
        try:
            return await self._run(work, write=True)
        finally:
            self._kicks_changed()

    async def kicked_at(self, sdkappid: int, user_id: str) -> int | None:
        """Cached while the LISTEN connection is up: kicks are rare, and every change to the
        kicks table announces itself (NOTIFY timserver_kicks), like app changes."""
        if "\x00" in user_id:  # PostgreSQL text cannot hold NUL (an error), and no account has one
            return None
        listening = self.listening()
        heard = self._kicks_heard
        if listening:
            now = time.monotonic()
            if self._kicks_seen != heard or now - self._kicks_since > STALE_AFTER:
                self._kicks.clear()
                self._kicks_seen = heard
                self._kicks_since = now
            try:
                return self._kicks[(sdkappid, user_id)]
            except KeyError:
                pass
        value = await self._run(lambda c: c.fetchval(
            "SELECT kicked_at FROM kicks WHERE sdkappid = $1 AND user_id = $2", sdkappid, user_id))
        if listening and self._kicks_heard == heard:  # no kick announced while we read
            if len(self._kicks) >= _KICKS_CACHED:
                self._kicks.clear()
            self._kicks[(sdkappid, user_id)] = value
        return value

    def _kicks_changed(self) -> None:
        """Our own change to kicks: forget them now, not when our NOTIFY comes back."""
        self._kicks_heard += 1

    async def count_accounts(self, sdkappid: int) -> int:
        value = await self._run(lambda c: c.fetchval(
            "SELECT account_count FROM apps WHERE sdkappid = $1", sdkappid))
        return value or 0

    async def banned(self, sdkappid: int, user_ids: Sequence[str], now: float) -> dict[str, float]:
        if not user_ids:
            return {}
        rows = await self._run(lambda c: c.fetch(
            "SELECT user_id, until FROM deletion_bans WHERE sdkappid = $1 AND until > $2 "
            "AND user_id = ANY($3::text[])", sdkappid, now, list(user_ids)))
        return {r["user_id"]: r["until"] for r in rows}

    async def profiles(self, sdkappid: int,
                       user_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not user_ids:
            return {}
        rows = await self._run(lambda c: c.fetch(
            "SELECT user_id, nick, face_url FROM accounts WHERE sdkappid = $1 "
            "AND user_id = ANY($2::text[])", sdkappid, list(user_ids)))
        return {r["user_id"]: (r["nick"], r["face_url"]) for r in rows}

    async def set_profile(self, sdkappid: int, user_id: str, nick: str | None,
                          face_url: str | None) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE accounts SET nick = coalesce($1, nick), "
                "face_url = coalesce($2, face_url) WHERE sdkappid = $3 AND user_id = $4",
                nick, face_url, sdkappid, user_id)
            return status != "UPDATE 0"
        return await self._run(work, write=True)

    # --- login state --------------------------------------------------------------------------
    async def devices(self, sdkappid: int, user_ids: Sequence[str]) -> dict[str, list[Device]]:
        if not user_ids:
            return {}
        rows = await self._run(lambda c: c.fetch(
            f"SELECT user_id, {_DEVICE_COLUMNS} FROM devices WHERE sdkappid = $1 "
            "AND user_id = ANY($2::text[]) ORDER BY user_id, platform", sdkappid, list(user_ids)))
        found: dict[str, list[Device]] = {}
        for r in rows:
            found.setdefault(r["user_id"], []).append(
                Device(r["platform"], r["status"], r["inst_id"], r["login_at"]))
        return found

    async def change_devices(self, sdkappid: int, user_id: str,
                             change: DeviceChange) -> tuple[list[Device], list[Device]] | None:
        async def work(conn: asyncpg.Connection) -> tuple[list[Device], list[Device]] | None:
            # The account's row, locked: changes of one account's devices take turns.
            if not await conn.fetchval("SELECT 1 FROM accounts WHERE sdkappid = $1 AND "
                                       "user_id = $2 FOR UPDATE", sdkappid, user_id):
                return None
            before = [Device(r["platform"], r["status"], r["inst_id"], r["login_at"])
                      for r in await conn.fetch(
                          f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE sdkappid = $1 AND "
                          "user_id = $2 ORDER BY platform", sdkappid, user_id)]
            after = change(list(before))
            await conn.execute("DELETE FROM devices WHERE sdkappid = $1 AND user_id = $2",
                               sdkappid, user_id)
            await conn.executemany(
                f"INSERT INTO devices (sdkappid, user_id, {_DEVICE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                [(sdkappid, user_id, d.platform, d.status, d.inst_id, d.login_at) for d in after])
            return before, after
        return await self._run(work, write=True)

    async def list_accounts(self, sdkappid: int, *, prefix: str = "", after: str = "",
                            limit: int = 100) -> list[Account]:
        rows = await self._run(lambda c: c.fetch(
            "SELECT user_id, nick, face_url, is_admin, created_at FROM accounts "
            "WHERE sdkappid = $1 AND user_id > $2 AND starts_with(user_id, $3) "
            "ORDER BY user_id LIMIT $4", sdkappid, after, prefix, limit))
        return [Account(r["user_id"], r["nick"], r["face_url"], r["is_admin"], r["created_at"])
                for r in rows]

    # --- emulator controls (timserver.emulator, docs/emulator.md) -----------------------------
    async def emulator_version(self) -> int:
        # Emulator changes NOTIFY the apps channel too: one counter covers both (_versions).
        return await self._versions()

    async def add_fault(self, sdkappid: int, spec: str, remaining: int | None) -> FaultRecord:
        async def work(conn: asyncpg.Connection) -> FaultRecord:
            row = await conn.fetchrow(
                f"INSERT INTO fault_rules (sdkappid, spec, remaining, created_at) "
                f"VALUES ($1, $2, $3, $4) RETURNING {_FAULT_COLUMNS}",
                sdkappid, spec, remaining, time.time())
            await _bump_emulator_version(conn)
            return FaultRecord(*row)
        return await self._write_versioned(work)

    async def list_faults(self, sdkappid: int | None = None) -> list[FaultRecord]:
        if sdkappid is None:
            rows = await self._run(lambda c: c.fetch(
                f"SELECT {_FAULT_COLUMNS} FROM fault_rules ORDER BY id"))
        else:
            rows = await self._run(lambda c: c.fetch(
                f"SELECT {_FAULT_COLUMNS} FROM fault_rules WHERE sdkappid = $1 ORDER BY id",
                sdkappid))
        return [FaultRecord(*row) for row in rows]

    async def delete_faults(self, sdkappid: int, rule_id: int | None = None) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            if rule_id is None:
                gone = await conn.fetch("DELETE FROM fault_rules WHERE sdkappid = $1 RETURNING id",
                                        sdkappid)
            else:
                gone = await conn.fetch("DELETE FROM fault_rules WHERE sdkappid = $1 AND id = $2 "
                                        "RETURNING id", sdkappid, rule_id)
            if gone:
                await _bump_emulator_version(conn)
            return len(gone)
        return await self._write_versioned(work)

    async def add_fault_matches(self, counts: Mapping[int, int]) -> None:
        rows = [(n, rule_id) for rule_id, n in sorted(counts.items())]  # one lock order
        await self._run(lambda c: c.executemany(
            "UPDATE fault_rules SET matched = matched + $1 WHERE id = $2", rows), write=True)

    async def hit_fault(self, rule_id: int) -> int | None:
        # The row lock serialises concurrent hits; the WHERE is checked again under it.
        return await self._run(lambda c: c.fetchval(
            "UPDATE fault_rules SET matched = matched + 1, remaining = remaining - 1 "
            "WHERE id = $1 AND (remaining IS NULL OR remaining > 0) RETURNING matched",
            rule_id), write=True)

    async def clock_offset(self) -> float:
        value = await self._run(lambda c: c.fetchval(
            "SELECT value FROM meta WHERE name = 'clock_offset_ms'"))
        return (value or 0) / 1000

    async def set_clock_offset(self, seconds: float) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "INSERT INTO meta (name, value) VALUES ('clock_offset_ms', $1) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value", round(seconds * 1000))
            await _bump_emulator_version(conn)
        await self._write_versioned(work)

    async def app_clock_offsets(self) -> dict[int, float]:
        rows = await self._run(lambda c: c.fetch("SELECT sdkappid, offset_ms FROM app_clocks"))
        return {row["sdkappid"]: row["offset_ms"] / 1000 for row in rows}

    async def app_clock_offset(self, sdkappid: int) -> float:
        value = await self._run(lambda c: c.fetchval(
            "SELECT offset_ms FROM app_clocks WHERE sdkappid = $1", sdkappid))
        return (value or 0) / 1000

    async def set_app_clock_offset(self, sdkappid: int, seconds: float) -> None:
        offset_ms = round(seconds * 1000)

        async def work(conn: asyncpg.Connection) -> None:
            if offset_ms:
                await conn.execute(
                    "INSERT INTO app_clocks (sdkappid, offset_ms) VALUES ($1, $2) "
                    "ON CONFLICT (sdkappid) DO UPDATE SET offset_ms = excluded.offset_ms",
                    sdkappid, offset_ms)
            else:
                await conn.execute("DELETE FROM app_clocks WHERE sdkappid = $1", sdkappid)
            await _bump_emulator_version(conn)
        await self._write_versioned(work)

    async def reset_accounts(self, sdkappid: int) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            # The app row first: the same lock a capped import takes, so counts stay exact.
            await conn.execute("SELECT 1 FROM apps WHERE sdkappid = $1 FOR UPDATE", sdkappid)
            gone = await conn.fetch("DELETE FROM accounts WHERE sdkappid = $1 AND NOT is_admin "
                                    "RETURNING 1", sdkappid)
            # admins stay, and so do their kicks: a revoked admin UserSig stays revoked
            await conn.execute("DELETE FROM kicks WHERE sdkappid = $1 AND user_id NOT IN (SELECT "
                               "user_id FROM accounts WHERE sdkappid = $1 AND is_admin)", sdkappid)
            await conn.execute(f"NOTIFY {_KICKS_CHANNEL}")  # delivered at commit
            await conn.execute("DELETE FROM devices WHERE sdkappid = $1 AND user_id NOT IN ("
                               "SELECT user_id FROM accounts WHERE sdkappid = $1 AND is_admin)",
                               sdkappid)
            await conn.execute("DELETE FROM deletion_bans WHERE sdkappid = $1", sdkappid)
            await conn.execute("UPDATE apps SET account_count = 0 WHERE sdkappid = $1", sdkappid)
            return len(gone)
        try:
            return await self._run(work, write=True)
        finally:
            self._kicks_changed()

    # --- portable state (timserver.portable) ------------------------------------------------
    async def list_kicks(self, sdkappid: int, *, after: str = "",
                         limit: int = 1000) -> list[tuple[str, int]]:
        rows = await self._run(lambda c: c.fetch(
            "SELECT user_id, kicked_at FROM kicks WHERE sdkappid = $1 AND user_id > $2 "
            "ORDER BY user_id LIMIT $3", sdkappid, after, limit))
        return [(r["user_id"], r["kicked_at"]) for r in rows]

    async def restore_accounts(self, sdkappid: int, rows: Sequence[Account]) -> int:
        if not rows:
            return 0
        ordered = sorted(rows, key=lambda r: r.user_id)  # one lock order, as imports take

        async def work(conn: asyncpg.Connection) -> int:
            created = await conn.fetchval(
                "WITH up AS (INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) "
                "SELECT $1, u, n, f, c FROM unnest($2::text[], $3::text[], $4::text[], "
                "$5::float8[]) AS t(u, n, f, c) "
                "ON CONFLICT (sdkappid, user_id) DO UPDATE SET nick = excluded.nick, "
                "face_url = excluded.face_url, created_at = excluded.created_at "
                "RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM up",
                sdkappid, [r.user_id for r in ordered], [r.nick for r in ordered],
                [r.face_url for r in ordered], [r.created_at for r in ordered])
            counted = await conn.execute("UPDATE apps SET account_count = account_count + $1 "
                                         "WHERE sdkappid = $2", created, sdkappid)
            if counted != "UPDATE 1":
                raise StorageError(f"no app with SDKAppID {sdkappid}")
            return created
        return await self._run(work, write=True)

    async def restore_kicks(self, sdkappid: int, rows: Sequence[tuple[str, int]]) -> None:
        if not rows:
            return

        async def work(conn: asyncpg.Connection) -> None:
            ordered = sorted(rows)
            await conn.execute(
                "INSERT INTO kicks (sdkappid, user_id, kicked_at) "
                "SELECT $1, u, k FROM unnest($2::text[], $3::bigint[]) AS t(u, k) "
                "ON CONFLICT (sdkappid, user_id) DO UPDATE SET kicked_at = excluded.kicked_at",
                sdkappid, [u for u, _ in ordered], [k for _, k in ordered])
            await conn.execute(f"NOTIFY {_KICKS_CHANNEL}")  # delivered at commit
        try:
            await self._run(work, write=True)
        finally:
            self._kicks_changed()

    async def replace_faults(self, sdkappid: int, rules: Sequence[FaultRecord]) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute("DELETE FROM fault_rules WHERE sdkappid = $1", sdkappid)
            await conn.executemany(
                "INSERT INTO fault_rules (sdkappid, spec, remaining, matched, created_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                [(sdkappid, r.spec, r.remaining, r.matched, r.created_at) for r in rules])
            await _bump_emulator_version(conn)
        await self._write_versioned(work)


async def _set_admins(conn: asyncpg.Connection, sdkappid: int, admins: Sequence[str]) -> None:
    """Make exactly ``admins`` the admin accounts of the app, keeping account_count exact."""
    await conn.execute("UPDATE accounts SET is_admin = false WHERE sdkappid = $1 AND is_admin",
                       sdkappid)
    await conn.execute(
        "INSERT INTO accounts (sdkappid, user_id, is_admin, created_at) "
        "SELECT $1, u, true, $3 FROM unnest($2::text[]) AS t(u) "
        "ON CONFLICT (sdkappid, user_id) DO UPDATE SET is_admin = true",
        sdkappid, sorted(set(admins)), time.time())
    await conn.execute(
        "UPDATE apps SET account_count = (SELECT count(*) FROM accounts "
        "WHERE sdkappid = $1 AND NOT is_admin) WHERE sdkappid = $1", sdkappid)


_FAULT_COLUMNS = "id, sdkappid, spec, remaining, matched, created_at"


async def _bump_emulator_version(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'emulator_version'")
    await conn.execute(f"NOTIFY {_CHANNEL}")  # delivered at commit; see emulator_version
