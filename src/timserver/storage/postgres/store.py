"""PostgreSQL storage: WHAT timserver keeps in a database shared by many instances (the queries).

* Every write is one transaction; PostgreSQL's commit (``synchronous_commit`` on, the default)
  makes it durable before the caller is answered.
* Rows are written in UserID order, so concurrent batches over the same accounts take their row
  locks in one order and never deadlock.
* ``account_count`` moves with each write; only a trial app (which has a cap) locks its app row
  while it imports, so that two instances cannot both take the last place.
* A write that changes apps or emulator state bumps a stored version (``bump_apps_version``,
  ``bump_emulator_version``, through ``write_versioned``); a write that changes kicks sends
  ``notify_kicks`` (through ``write_kicks``): the engine's versions counter and kicks cache
  (``engine.py``, with the pool, LISTEN/NOTIFY and the heartbeat) follow them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from ..base import (
    Account,
    AccountWrite,
    App,
    AppExists,
    Callback,
    Capabilities,
    Device,
    DeviceChange,
    FaultRecord,
    StorageError,
    callback_from_json,
    callback_json,
)
from ..bulk import Merged, pipelined_load
from .engine import (
    KICKS_CHANNEL,
    MISSING,
    PostgresEngine,
    bump_apps_version,
    bump_emulator_version,
    notify_kicks,
)

_APP_COLUMNS = "sdkappid, secret_key, edition, admins, limits, created_at, allow_delete, callback"
_APP_INSERT = "sdkappid, secret_key, edition, admins, limits, created_at"
_DEVICE_COLUMNS = "platform, status, inst_id, login_at"
_FAULT_COLUMNS = "id, sdkappid, spec, remaining, matched, created_at"


def _app_from_row(row: Any) -> App:
    return App(sdkappid=row["sdkappid"], key=row["secret_key"], edition=row["edition"],
               admins=tuple(json.loads(row["admins"])), limits=json.loads(row["limits"]),
               created_at=row["created_at"], allow_delete=row["allow_delete"],
               callback=callback_from_json(row["callback"]))



class PostgresStorage:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 command_timeout: float = 10.0) -> None:
        self.url = url
        self.engine = PostgresEngine(url, min_size=min_size, max_size=max_size,
                                     command_timeout=command_timeout)
        self._run = self.engine.run
        #: asyncpg enters ``asyncio.timeout`` scopes (pool acquire and release), which belong to
        #: the task they are entered in; ``engine.run`` waits once before it reaches asyncpg, so
        #: work started inline (``dispatch.within(eager=True)``) is in a task of its own by then.
        #: What needs no round trip (app records and kicks kept while LISTEN runs) costs no task.
        self.capabilities = Capabilities(runs_inline=True, health=self.engine.health,
                                         pool_stats=self.engine.pool_stats)

    # --- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> None:
        await self.engine.ping()

    # --- apps ---------------------------------------------------------------------------------
    async def apps_version(self) -> int:
        return await self.engine.versions()

    async def create_app(self, app: App) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO apps ({_APP_INSERT}) VALUES ($1, $2, $3, $4, $5, $6)",
                app.sdkappid, app.key, app.edition, json.dumps(app.admins),
                json.dumps(app.limits), app.created_at or time.time())
            await _set_admins(conn, app.sdkappid, app.admins)
            await bump_apps_version(conn)
        try:
            await self.engine.write_versioned(work)
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
            await bump_apps_version(conn)
            return _app_from_row(await conn.fetchrow(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = $1", sdkappid))
        return await self.engine.write_versioned(work)

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
                f"SELECT count(pg_notify('{KICKS_CHANNEL}', '')) FROM k",
                sdkappid, user_id, at)
            return done > 0
        return await self.engine.write_kicks(work)

    async def unkick(self, sdkappid: int, user_id: str | None = None) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            if user_id is None:
                gone = await conn.fetch("DELETE FROM kicks WHERE sdkappid = $1 RETURNING 1",
                                        sdkappid)
            else:
                gone = await conn.fetch("DELETE FROM kicks WHERE sdkappid = $1 AND user_id = $2 "
                                        "RETURNING 1", sdkappid, user_id)
            await notify_kicks(conn)  # delivered at commit
            return len(gone)
        return await self.engine.write_kicks(work)

    async def kicked_at(self, sdkappid: int, user_id: str) -> int | None:
        """Kept by the engine while the LISTEN connection is up (``cached_kick``)."""
        if "\x00" in user_id:  # PostgreSQL text cannot hold NUL (an error), and no account has one
            return None
        key = (sdkappid, user_id)
        value, ticket = self.engine.cached_kick(key)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        value = await self._run(lambda c: c.fetchval(
            "SELECT kicked_at FROM kicks WHERE sdkappid = $1 AND user_id = $2", sdkappid, user_id))
        self.engine.keep_kick(key, value, ticket)
        return value  # type: ignore[no-any-return]

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
        # Emulator changes NOTIFY the apps channel too: one counter covers both (engine.versions).
        return await self.engine.versions()

    async def add_fault(self, sdkappid: int, spec: str, remaining: int | None) -> FaultRecord:
        async def work(conn: asyncpg.Connection) -> FaultRecord:
            row = await conn.fetchrow(
                f"INSERT INTO fault_rules (sdkappid, spec, remaining, created_at) "
                f"VALUES ($1, $2, $3, $4) RETURNING {_FAULT_COLUMNS}",
                sdkappid, spec, remaining, time.time())
            await bump_emulator_version(conn)
            return FaultRecord(*row)
        return await self.engine.write_versioned(work)

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
                await bump_emulator_version(conn)
            return len(gone)
        return await self.engine.write_versioned(work)

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
            await bump_emulator_version(conn)
        await self.engine.write_versioned(work)

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
            await bump_emulator_version(conn)
        await self.engine.write_versioned(work)

    async def reset_accounts(self, sdkappid: int) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            # The app row first: the same lock a capped import takes, so counts stay exact.
            await conn.execute("SELECT 1 FROM apps WHERE sdkappid = $1 FOR UPDATE", sdkappid)
            gone = await conn.fetch("DELETE FROM accounts WHERE sdkappid = $1 AND NOT is_admin "
                                    "RETURNING 1", sdkappid)
            # admins stay, and so do their kicks: a revoked admin UserSig stays revoked
            await conn.execute("DELETE FROM kicks WHERE sdkappid = $1 AND user_id NOT IN (SELECT "
                               "user_id FROM accounts WHERE sdkappid = $1 AND is_admin)", sdkappid)
            await notify_kicks(conn)  # delivered at commit
            await conn.execute("DELETE FROM devices WHERE sdkappid = $1 AND user_id NOT IN ("
                               "SELECT user_id FROM accounts WHERE sdkappid = $1 AND is_admin)",
                               sdkappid)
            await conn.execute("DELETE FROM deletion_bans WHERE sdkappid = $1", sdkappid)
            await conn.execute("UPDATE apps SET account_count = 0 WHERE sdkappid = $1", sdkappid)
            return len(gone)
        return await self.engine.write_kicks(work)

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
            await notify_kicks(conn)  # delivered at commit
        await self.engine.write_kicks(work)

    async def replace_faults(self, sdkappid: int, rules: Sequence[FaultRecord]) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute("DELETE FROM fault_rules WHERE sdkappid = $1", sdkappid)
            await conn.executemany(
                "INSERT INTO fault_rules (sdkappid, spec, remaining, matched, created_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                [(sdkappid, r.spec, r.remaining, r.matched, r.created_at) for r in rules])
            await bump_emulator_version(conn)
        await self.engine.write_versioned(work)


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

