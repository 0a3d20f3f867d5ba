"""Named snapshots of a PostgreSQL database (the interface and what they hold: ``storage/snapshots.py``).

The same semantics as the SQLite snapshots (``sqlite/snapshots.py``), kept inside the database:

* Snapshot ``NAME`` is a schema ``timserver_snapshot_<N>`` (N from a sequence, so that names
  follow the SQLite rule: up to 64 characters, ``.`` and ``-`` allowed) holding copies of the
  data tables (``apps``, ``accounts``, ``kicks``, ``devices``, ``deletion_bans``), made with
  ``CREATE TABLE ... AS SELECT`` in one REPEATABLE READ transaction: the copies are one
  consistent view, taken while servers run
  (nobody waits for it). The schema ``timserver_snapshots`` holds the catalogue (name, schema,
  time, counts, size). Both are made on first use; ``pg_dump`` of the database includes them.
* Fault rules and the clock offset are controls of the emulator, not data: a restore leaves them.
* Restore is ONE transaction: it locks the data tables in EXCLUSIVE mode (servers' writes wait
  for it; their reads go on and see the old data or the new, never a mix), replaces their rows by
  the snapshot's (columns matched by name, so a snapshot taken before a later migration still
  restores when the new columns have defaults), bumps ``apps_version`` with ``NOTIFY
  timserver_apps`` exactly as an app change does, and sends ``NOTIFY timserver_kicks``: at commit
  every running instance drops its cached app records and kick times.
* The locks are taken with a short ``lock_timeout`` and retried: the restore never waits while it
  holds some of them, so it cannot deadlock with a server's write (which take the tables' row locks
  in different orders) and a server's write waits for it at most that long before it starts.
* Snapshot commands of several processes run one at a time (a session advisory lock).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ..snapshots import (
    ADMIN_KICKS,
    DATA_TABLES,
    KEEP_ADMIN_KICKS,
    LATER_TABLES,
    SnapshotError,
    SnapshotInfo,
    check_name,
)
from .engine import bump_apps_version, notify_kicks

T = TypeVar("T")

CATALOG_SCHEMA = "timserver_snapshots"
SCHEMA_PREFIX = "timserver_snapshot_"
_LOCK = 0x74736E70  # advisory lock key ("tsnp"): one snapshot command at a time
_LOCK_TIMEOUT_MS = 200  # below deadlock_timeout (1 s): a restore never waits long holding a lock
_LOCK_PATIENCE = 60.0  # seconds of retries before a restore gives up on the locks
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConnectionError,
                  asyncio.TimeoutError)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _info(row: Any) -> SnapshotInfo:
    return SnapshotInfo(row["name"], f"schema {row['schema_name']}", row["size"],
                        row["created_at"], row["apps"], row["accounts"])


_CATALOG_COLUMNS = "name, schema_name, created_at, apps, accounts, size"


# --- connections ------------------------------------------------------------------------------


def _run(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
         exclusive: bool = True) -> T:
    """Connect, (take the snapshot lock,) run ``work``, close; driver errors → SnapshotError."""
    async def run() -> T:
        try:
            conn = await asyncpg.connect(url, timeout=10)
        except _DRIVER_ERRORS as exc:
            raise SnapshotError(f"cannot connect to the PostgreSQL database: {exc}") from None
        try:
            if exclusive:  # session-level: released at the end, or when the connection dies
                await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
            return await work(conn)
        except SnapshotError:
            raise
        except _DRIVER_ERRORS as exc:
            raise SnapshotError(f"PostgreSQL: {exc}") from None
        finally:
            try:
                await conn.close(timeout=5)
            except _DRIVER_ERRORS:
                conn.terminate()
    return asyncio.run(run())


async def _ensure_catalog(conn: asyncpg.Connection) -> None:
    """The catalogue, made on first use (under the snapshot lock: no race on IF NOT EXISTS)."""
    await conn.execute(f"""
        CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA};
        CREATE SEQUENCE IF NOT EXISTS {CATALOG_SCHEMA}.ids;
        CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.catalog (
            name        TEXT COLLATE "C" PRIMARY KEY,
            schema_name TEXT NOT NULL UNIQUE,
            created_at  DOUBLE PRECISION NOT NULL,
            apps        BIGINT NOT NULL,
            accounts    BIGINT NOT NULL,         -- non-admin accounts
            size        BIGINT NOT NULL          -- bytes of the three copies
        )""")


async def _has_catalog(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                               f"{CATALOG_SCHEMA}.catalog")


async def _find(conn: asyncpg.Connection, name: str) -> Any:
    if not await _has_catalog(conn):
        return None
    return await conn.fetchrow(
        f"SELECT {_CATALOG_COLUMNS} FROM {CATALOG_SCHEMA}.catalog WHERE name = $1", name)


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns of ``table`` (a name as the search path finds it, or schema.table), in order;
    [] when there is no such table."""
    return [r["attname"] for r in await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", table)]


# --- the commands -----------------------------------------------------------------------------


def save(url: str, name: str, *, overwrite: bool = False) -> SnapshotInfo:
    """Copy the data tables into snapshot ``name`` (consistently, while servers run)."""
    check_name(name)

    async def work(conn: asyncpg.Connection) -> SnapshotInfo:
        await _ensure_catalog(conn)
        old = await _find(conn, name)
        if old is not None and not overwrite:
            raise SnapshotError(f"snapshot {name!r} exists already (use --force to replace it)")
        # One snapshot of the database for the three copies; the old one goes in the same
        # transaction: a snapshot is whole or absent, never half replaced.
        async with conn.transaction(isolation="repeatable_read"):
            number = await conn.fetchval(f"SELECT nextval('{CATALOG_SCHEMA}.ids')")
            schema = f"{SCHEMA_PREFIX}{number}"
            await conn.execute(f"CREATE SCHEMA {schema}")
            for table in DATA_TABLES:
                await conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM {table}")
            apps = await conn.fetchval(f"SELECT count(*) FROM {schema}.apps")
            accounts = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.accounts WHERE NOT is_admin")
            size = await conn.fetchval("SELECT " + " + ".join(
                f"pg_total_relation_size('{schema}.{table}')" for table in DATA_TABLES))
            if old is not None:
                await conn.execute(f"DELETE FROM {CATALOG_SCHEMA}.catalog WHERE name = $1", name)
                await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(old['schema_name'])} CASCADE")
            row = await conn.fetchrow(
                f"INSERT INTO {CATALOG_SCHEMA}.catalog ({_CATALOG_COLUMNS}) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_CATALOG_COLUMNS}",
                name, schema, time.time(), apps, accounts, size)
        return _info(row)
    return _run(url, work)


async def _lock_data_tables(conn: asyncpg.Connection) -> None:
    """EXCLUSIVE locks on the data tables, inside the caller's transaction.

    Each try waits at most _LOCK_TIMEOUT_MS; a failed try rolls back to a savepoint (giving back
    what it had taken) and tries again a moment later, so the restore never holds one table while
    waiting long for another (a deadlock with a server's write) and never stalls a server's write
    for more than that.
    """
    deadline = time.monotonic() + _LOCK_PATIENCE
    await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_MS}ms'")
    while True:
        try:
            async with conn.transaction():  # a savepoint
                await conn.execute(f"LOCK TABLE {', '.join(DATA_TABLES)} IN EXCLUSIVE MODE")
            break
        except asyncpg.LockNotAvailableError:
            if time.monotonic() > deadline:
                raise SnapshotError(f"the data tables stayed busy for {_LOCK_PATIENCE:g} s "
                                    "(a long transaction holds them); try again") from None
            await asyncio.sleep(random.uniform(0.01, 0.1))  # jitter
    await conn.execute("SET LOCAL lock_timeout = 0")


def restore(url: str, name: str) -> SnapshotInfo:
    """Replace the database's data tables (apps, accounts, kicks, devices, deletion bans) by
    the snapshot's, in one transaction."""
    check_name(name)

    async def work(conn: asyncpg.Connection) -> SnapshotInfo:
        found = await _find(conn, name)
        if found is None:
            raise SnapshotError(f"no snapshot {name!r} (timserver snapshot list shows them)")
        schema = found["schema_name"]
        plan = []
        for table in DATA_TABLES:
            theirs = set(await _columns(conn, f"{_ident(schema)}.{table}"))
            if not theirs and table in LATER_TABLES:
                plan.append((table, ""))
                continue
            if not theirs:
                raise SnapshotError(f"snapshot {name!r} has no {table} table: it is not a "
                                    "timserver snapshot")
            shared = [c for c in await _columns(conn, table) if c in theirs]
            plan.append((table, ", ".join(_ident(c) for c in shared)))
        try:
            async with conn.transaction():
                await _lock_data_tables(conn)
                await conn.execute("CREATE TEMP TABLE kept_kicks ON COMMIT DROP AS "
                                   + ADMIN_KICKS.format(db=""))
                for table, _ in reversed(plan):
                    await conn.execute(f"DELETE FROM {table}")
                for table, cols in plan:
                    if cols:
                        await conn.execute(f"INSERT INTO {table} ({cols}) "
                                           f"SELECT {cols} FROM {_ident(schema)}.{table}")
                await conn.execute(KEEP_ADMIN_KICKS.format(db="", later="greatest"))
                # At commit every instance drops its cached apps (as on any app change) and its
                # cached kick times (as on any kick).
                await bump_apps_version(conn)
                await notify_kicks(conn)
        except asyncpg.PostgresError as exc:
            raise SnapshotError(f"cannot restore snapshot {name!r}: {exc}") from None
        return _info(found)
    return _run(url, work)


def list_snapshots(url: str) -> list[SnapshotInfo]:
    async def work(conn: asyncpg.Connection) -> list[SnapshotInfo]:
        if not await _has_catalog(conn):
            return []
        rows = await conn.fetch(
            f"SELECT {_CATALOG_COLUMNS} FROM {CATALOG_SCHEMA}.catalog ORDER BY name")
        return [_info(row) for row in rows]
    return _run(url, work, exclusive=False)


def delete(url: str, name: str) -> None:
    check_name(name)

    async def work(conn: asyncpg.Connection) -> None:
        found = await _find(conn, name)
        if found is None:
            raise SnapshotError(f"no snapshot {name!r}")
        async with conn.transaction():
            await conn.execute(f"DELETE FROM {CATALOG_SCHEMA}.catalog WHERE name = $1", name)
            await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(found['schema_name'])} CASCADE")
    _run(url, work)


class PostgresSnapshots:
    """``Snapshots`` of a ``postgresql://`` database: schemas inside it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def check(self, name: str) -> None:
        check_name(name)

    def save(self, name: str, *, overwrite: bool = False) -> SnapshotInfo:
        return save(self.url, name, overwrite=overwrite)

    def restore(self, name: str) -> SnapshotInfo:
        return restore(self.url, name)

    def list_snapshots(self) -> list[SnapshotInfo]:
        return list_snapshots(self.url)

    def delete(self, name: str) -> None:
        delete(self.url, name)
