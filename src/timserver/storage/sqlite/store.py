"""SQLite storage: WHAT timserver keeps in the embedded default database (the queries).

How it runs them (the reader's shared snapshot, the memo kept until the next commit, the writer
thread's group commit, the write probe) is the engine's (``engine.py``): a read here is an
inline ``_read``/``_read_kept``, a write a function of the writer's connection given to
``_write``, one atomic transaction durable when its coroutine returns.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

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
from .engine import SQLiteEngine, path_from_url

_BULK_CACHE_KIB = 256 * 1024  # page cache of the writer during a bulk load
_SHORT_LIST = 8  # up to this many UserIDs, a list of placeholders; above, one JSON array
_json_encode = msgspec.json.Encoder().encode


def _app_from_row(row: tuple[Any, ...]) -> App:
    sdkappid, key, edition, admins, limits, created_at, allow_delete, callback = row
    return App(sdkappid=sdkappid, key=key, edition=edition, admins=tuple(json.loads(admins)),
               limits=json.loads(limits), created_at=created_at,
               allow_delete=bool(allow_delete), callback=callback_from_json(callback))


_APP_COLUMNS = "sdkappid, secret_key, edition, admins, limits, created_at, allow_delete, callback"
_APP_INSERT = "sdkappid, secret_key, edition, admins, limits, created_at"


def _bump_apps_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class SQLiteStorage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.engine = SQLiteEngine(self.path)
        # Bound once: the engine's calls are on every request's path.
        self._read = self.engine.read
        self._read_kept = self.engine.read_kept
        self._write = self.engine.write
        #: Reads run inline and writes only wait for the writer thread's futures: nothing here
        #: is bound to the calling task, so callers may start this work inline
        #: (``dispatch.within``).
        self.capabilities = Capabilities(runs_inline=True, health=self.engine.health)

    # --- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        self.engine.open()

    async def close(self) -> None:
        self.engine.close()

    async def ping(self) -> None:
        self.engine.ping()

    # --- apps ---------------------------------------------------------------------------------
    async def apps_version(self) -> int:
        return self._read_kept("SELECT value FROM meta WHERE name = 'apps_version'")[0][0]

    async def create_app(self, app: App) -> None:
        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO apps ({_APP_INSERT}) VALUES (?, ?, ?, ?, ?, ?)",
                    (app.sdkappid, app.key, app.edition, json.dumps(app.admins),
                     json.dumps(app.limits), app.created_at or time.time()))
            except sqlite3.IntegrityError:
                raise AppExists(f"an app with SDKAppID {app.sdkappid} already exists") from None
            _set_admins(conn, app.sdkappid, app.admins)
            _bump_apps_version(conn)
        await self._write(write)

    async def get_app(self, sdkappid: int) -> App | None:
        rows = self._read(f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = ?", (sdkappid,))
        return _app_from_row(rows[0]) if rows else None

    async def list_apps(self) -> list[App]:
        return [_app_from_row(r) for r in
                self._read(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY sdkappid")]

    async def update_app(self, sdkappid: int, *, key: str | None = None,
                         edition: str | None = None, admins: Sequence[str] | None = None,
                         limit: tuple[str, int] | None = None,
                         allow_delete: bool | None = None, callback: Callback | None = None,
                         clear_callback: bool = False) -> App | None:
        def write(conn: sqlite3.Connection) -> App | None:
            rows = conn.execute(f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = ?",
                                (sdkappid,)).fetchall()
            if not rows:
                return None
            app = _app_from_row(rows[0])
            limits = dict(app.limits)
            if limit is not None:
                limits[limit[0]] = limit[1]
            conn.execute(
                "UPDATE apps SET secret_key = ?, edition = ?, admins = ?, limits = ? "
                "WHERE sdkappid = ?",
                (key or app.key, edition or app.edition,
                 json.dumps(list(admins) if admins is not None else list(app.admins)),
                 json.dumps(limits), sdkappid))
            if admins is not None:
                _set_admins(conn, sdkappid, admins)
            if allow_delete is not None:
                conn.execute("UPDATE apps SET allow_delete = ? WHERE sdkappid = ?",
                             (int(allow_delete), sdkappid))
            if callback is not None or clear_callback:
                conn.execute("UPDATE apps SET callback = ? WHERE sdkappid = ?",
                             (callback_json(callback), sdkappid))
            _bump_apps_version(conn)
            return _app_from_row(conn.execute(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE sdkappid = ?", (sdkappid,)).fetchone())
        return await self._write(write)

    # --- accounts -----------------------------------------------------------------------------
    async def import_accounts(self, sdkappid: int, items: Sequence[AccountWrite],
                              max_accounts: int | None) -> list[bool]:
        def write(conn: sqlite3.Connection) -> list[bool]:
            ids = list({item.user_id: None for item in items})
            known = {uid for (uid,) in conn.execute(
                f"SELECT user_id FROM accounts WHERE sdkappid = ? AND user_id IN "
                f"({_placeholders(len(ids))})", (sdkappid, *ids))}
            (count,) = conn.execute("SELECT account_count FROM apps WHERE sdkappid = ?",
                                    (sdkappid,)).fetchone()
            applied, rows, now = [], [], time.time()
            for item in items:
                if item.user_id not in known:
                    if max_accounts is not None and count >= max_accounts:
                        applied.append(False)
                        continue
                    known.add(item.user_id)
                    count += 1
                applied.append(True)
                rows.append((sdkappid, item.user_id, item.nick, item.face_url, now))
            conn.executemany(
                "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
                "nick = coalesce(excluded.nick, nick), "
                "face_url = coalesce(excluded.face_url, face_url)", rows)
            conn.execute("UPDATE apps SET account_count = ? WHERE sdkappid = ?", (count, sdkappid))
            return applied
        return await self._write(write)

    async def bulk_load(self, sdkappid: int, rows: Iterable[AccountWrite], *,
                        batch_size: int = 50_000,
                        progress: Callable[[int], None] | None = None) -> int:
        def load(merged: Merged) -> Callable[[sqlite3.Connection], int]:
            def write(conn: sqlite3.Connection) -> int:
                # Existing accounts first get their given profile fields, then the rest is new.
                conn.executemany(
                    "UPDATE accounts SET nick = coalesce(?, nick), face_url = coalesce(?, face_url) "
                    "WHERE sdkappid = ? AND user_id = ?",
                    [(nick, face, sdkappid, uid) for uid, (nick, face) in merged.items()
                     if nick is not None or face is not None])
                now = time.time()
                created = conn.executemany(
                    "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sdkappid, user_id) DO NOTHING",
                    [(sdkappid, uid, nick, face, now) for uid, (nick, face) in merged.items()],
                ).rowcount
                if not conn.execute("UPDATE apps SET account_count = account_count + ? "
                                    "WHERE sdkappid = ?", (created, sdkappid)).rowcount:
                    raise StorageError(f"no app with SDKAppID {sdkappid}")
                return created
            return write

        async with self.engine.page_cache(_BULK_CACHE_KIB):  # a big one while loading
            return await pipelined_load(rows, batch_size, lambda merged: self._write(load(merged)),
                                        progress)

    async def existing(self, sdkappid: int, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        if len(user_ids) > _SHORT_LIST and "".join(user_ids).isascii():
            # One JSON array parameter instead of 100 placeholders, walked in order (CROSS JOIN
            # keeps SQLite from reordering): one primary-key probe per UserID, nothing sorted.
            rows = self._read("SELECT a.user_id FROM json_each(?) AS j CROSS JOIN accounts AS a "
                              "WHERE a.sdkappid = ? AND a.user_id = j.value",
                              (_json_encode(list(user_ids)).decode("ascii"), sdkappid))
            return {uid for (uid,) in rows}
        rows = self._read(
            f"SELECT user_id FROM accounts WHERE sdkappid = ? AND user_id IN "
            f"({_placeholders(len(user_ids))})", (sdkappid, *user_ids))
        return {uid for (uid,) in rows}

    async def delete_accounts(self, sdkappid: int, user_ids: Sequence[str],
                              banned_until: float | None = None) -> list[bool]:
        def write(conn: sqlite3.Connection) -> list[bool]:
            ids = list(dict.fromkeys(user_ids))
            present = {uid for (uid,) in conn.execute(
                f"SELECT user_id FROM accounts WHERE sdkappid = ? AND is_admin = 0 AND user_id IN "
                f"({_placeholders(len(ids))})", (sdkappid, *ids))}
            deleted = []
            for uid in user_ids:
                deleted.append(uid in present)
                present.discard(uid)  # a second occurrence finds it gone
            gone = [uid for uid, d in zip(user_ids, deleted, strict=True) if d]
            conn.executemany("DELETE FROM accounts WHERE sdkappid = ? AND user_id = ?",
                             [(sdkappid, uid) for uid in gone])
            conn.executemany("DELETE FROM devices WHERE sdkappid = ? AND user_id = ?",
                             [(sdkappid, uid) for uid in gone])
            if banned_until is not None:
                conn.executemany(
                    "INSERT INTO deletion_bans (sdkappid, user_id, until) VALUES (?, ?, ?) "
                    "ON CONFLICT (sdkappid, user_id) DO UPDATE SET until = excluded.until",
                    [(sdkappid, uid, banned_until) for uid in gone])
            conn.execute("UPDATE apps SET account_count = account_count - ? WHERE sdkappid = ?",
                         (len(gone), sdkappid))
            return deleted
        if not user_ids:
            return []
        return await self._write(write)

    async def kick(self, sdkappid: int, user_id: str, at: int) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            exists = conn.execute("SELECT 1 FROM accounts WHERE sdkappid = ? AND user_id = ?",
                                  (sdkappid, user_id)).fetchone()
            if not exists:
                return False
            conn.execute(
                "INSERT INTO kicks (sdkappid, user_id, kicked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
                "kicked_at = max(kicked_at, excluded.kicked_at)", (sdkappid, user_id, at))
            return True
        return await self._write(write)

    async def unkick(self, sdkappid: int, user_id: str | None = None) -> int:
        def write(conn: sqlite3.Connection) -> int:
            if user_id is None:
                return conn.execute("DELETE FROM kicks WHERE sdkappid = ?", (sdkappid,)).rowcount
            return conn.execute("DELETE FROM kicks WHERE sdkappid = ? AND user_id = ?",
                                (sdkappid, user_id)).rowcount
        return await self._write(write)

    async def kicked_at(self, sdkappid: int, user_id: str) -> int | None:
        rows = self._read_kept("SELECT kicked_at FROM kicks WHERE sdkappid = ? AND user_id = ?",
                               (sdkappid, user_id))
        return rows[0][0] if rows else None

    async def count_accounts(self, sdkappid: int) -> int:
        rows = self._read("SELECT account_count FROM apps WHERE sdkappid = ?", (sdkappid,))
        return rows[0][0] if rows else 0

    async def banned(self, sdkappid: int, user_ids: Sequence[str], now: float) -> dict[str, float]:
        if not user_ids:
            return {}
        rows = self._read(
            f"SELECT user_id, until FROM deletion_bans WHERE sdkappid = ? AND until > ? AND "
            f"user_id IN ({_placeholders(len(user_ids))})", (sdkappid, now, *user_ids))
        return dict(rows)

    async def profiles(self, sdkappid: int,
                       user_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not user_ids:
            return {}
        rows = self._read(
            f"SELECT user_id, nick, face_url FROM accounts WHERE sdkappid = ? AND user_id IN "
            f"({_placeholders(len(user_ids))})", (sdkappid, *user_ids))
        return {uid: (nick, face) for uid, nick, face in rows}

    async def set_profile(self, sdkappid: int, user_id: str, nick: str | None,
                          face_url: str | None) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE accounts SET nick = coalesce(?, nick), face_url = coalesce(?, face_url) "
                "WHERE sdkappid = ? AND user_id = ?",
                (nick, face_url, sdkappid, user_id)).rowcount > 0
        return await self._write(write)

    # --- login state --------------------------------------------------------------------------
    async def devices(self, sdkappid: int, user_ids: Sequence[str]) -> dict[str, list[Device]]:
        found: dict[str, list[Device]] = {}
        for start in range(0, len(user_ids), 500):  # SQLite's limit on bound parameters
            part = user_ids[start:start + 500]
            for uid, *device in self._read(
                    f"SELECT user_id, {_DEVICE_COLUMNS} FROM devices WHERE sdkappid = ? AND "
                    f"user_id IN ({_placeholders(len(part))}) ORDER BY user_id, platform",
                    (sdkappid, *part)):
                found.setdefault(uid, []).append(Device(*device))
        return found

    async def change_devices(self, sdkappid: int, user_id: str,
                             change: DeviceChange) -> tuple[list[Device], list[Device]] | None:
        def write(conn: sqlite3.Connection) -> tuple[list[Device], list[Device]] | None:
            if not conn.execute("SELECT 1 FROM accounts WHERE sdkappid = ? AND user_id = ?",
                                (sdkappid, user_id)).fetchone():
                return None
            before = [Device(*row) for row in conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE sdkappid = ? AND user_id = ? "
                "ORDER BY platform", (sdkappid, user_id))]
            after = change(list(before))
            conn.execute("DELETE FROM devices WHERE sdkappid = ? AND user_id = ?",
                         (sdkappid, user_id))
            conn.executemany(
                f"INSERT INTO devices (sdkappid, user_id, {_DEVICE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(sdkappid, user_id, d.platform, d.status, d.inst_id, d.login_at) for d in after])
            return before, after
        return await self._write(write)

    async def list_accounts(self, sdkappid: int, *, prefix: str = "", after: str = "",
                            limit: int = 100) -> list[Account]:
        sql = ("SELECT user_id, nick, face_url, is_admin, created_at FROM accounts "
               "WHERE sdkappid = ? AND user_id > ?")
        params: list[Any] = [sdkappid, after]
        if prefix:
            # substr comparison keeps it byte-exact (LIKE would fold ASCII case and treat % _).
            sql += " AND substr(user_id, 1, ?) = ?"
            params += [len(prefix), prefix]
        sql += " ORDER BY user_id LIMIT ?"
        params.append(limit)
        return [Account(uid, nick, face, bool(adm), created)
                for uid, nick, face, adm, created in self._read(sql, params)]

    # --- emulator controls (timserver.emulator, docs/emulator.md) -----------------------------
    async def emulator_version(self) -> int:
        rows = self._read_kept("SELECT value FROM meta WHERE name = 'emulator_version'")
        return rows[0][0] if rows else 0

    async def add_fault(self, sdkappid: int, spec: str, remaining: int | None) -> FaultRecord:
        def write(conn: sqlite3.Connection) -> FaultRecord:
            row = conn.execute(
                f"INSERT INTO fault_rules (sdkappid, spec, remaining, created_at) "
                f"VALUES (?, ?, ?, ?) RETURNING {_FAULT_COLUMNS}",
                (sdkappid, spec, remaining, time.time())).fetchone()
            _bump_emulator_version(conn)
            return FaultRecord(*row)
        return await self._write(write)

    async def list_faults(self, sdkappid: int | None = None) -> list[FaultRecord]:
        if sdkappid is None:
            rows = self._read(f"SELECT {_FAULT_COLUMNS} FROM fault_rules ORDER BY id")
        else:
            rows = self._read(f"SELECT {_FAULT_COLUMNS} FROM fault_rules WHERE sdkappid = ? "
                              "ORDER BY id", (sdkappid,))
        return [FaultRecord(*row) for row in rows]

    async def delete_faults(self, sdkappid: int, rule_id: int | None = None) -> int:
        def write(conn: sqlite3.Connection) -> int:
            if rule_id is None:
                cur = conn.execute("DELETE FROM fault_rules WHERE sdkappid = ?", (sdkappid,))
            else:
                cur = conn.execute("DELETE FROM fault_rules WHERE sdkappid = ? AND id = ?",
                                   (sdkappid, rule_id))
            if cur.rowcount:
                _bump_emulator_version(conn)
            return cur.rowcount
        return await self._write(write)

    async def add_fault_matches(self, counts: Mapping[int, int]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE fault_rules SET matched = matched + ? WHERE id = ?",
                             [(n, rule_id) for rule_id, n in sorted(counts.items())])
        await self._write(write)

    async def hit_fault(self, rule_id: int) -> int | None:
        def write(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "UPDATE fault_rules SET matched = matched + 1, remaining = remaining - 1 "
                "WHERE id = ? AND (remaining IS NULL OR remaining > 0) RETURNING matched",
                (rule_id,)).fetchone()
            return row[0] if row else None
        return await self._write(write)

    async def clock_offset(self) -> float:
        rows = self._read("SELECT value FROM meta WHERE name = 'clock_offset_ms'")
        return rows[0][0] / 1000 if rows else 0.0

    async def set_clock_offset(self, seconds: float) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO meta (name, value) VALUES ('clock_offset_ms', ?) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                         (round(seconds * 1000),))
            _bump_emulator_version(conn)
        await self._write(write)

    async def app_clock_offsets(self) -> dict[int, float]:
        return {sdkappid: offset_ms / 1000 for sdkappid, offset_ms
                in self._read("SELECT sdkappid, offset_ms FROM app_clocks")}

    async def app_clock_offset(self, sdkappid: int) -> float:
        rows = self._read("SELECT offset_ms FROM app_clocks WHERE sdkappid = ?", (sdkappid,))
        return rows[0][0] / 1000 if rows else 0.0

    async def set_app_clock_offset(self, sdkappid: int, seconds: float) -> None:
        offset_ms = round(seconds * 1000)

        def write(conn: sqlite3.Connection) -> None:
            if offset_ms:
                conn.execute("INSERT INTO app_clocks (sdkappid, offset_ms) VALUES (?, ?) "
                             "ON CONFLICT (sdkappid) DO UPDATE SET offset_ms = excluded.offset_ms",
                             (sdkappid, offset_ms))
            else:
                conn.execute("DELETE FROM app_clocks WHERE sdkappid = ?", (sdkappid,))
            _bump_emulator_version(conn)
        await self._write(write)

    async def reset_accounts(self, sdkappid: int) -> int:
        def write(conn: sqlite3.Connection) -> int:
            deleted = conn.execute("DELETE FROM accounts WHERE sdkappid = ? AND is_admin = 0",
                                   (sdkappid,)).rowcount
            # admins stay, and so do their kicks: a revoked admin UserSig stays revoked
            conn.execute("DELETE FROM kicks WHERE sdkappid = ? AND user_id NOT IN (SELECT user_id "
                         "FROM accounts WHERE sdkappid = ? AND is_admin = 1)", (sdkappid, sdkappid))
            conn.execute("DELETE FROM devices WHERE sdkappid = ? AND user_id NOT IN (SELECT "
                         "user_id FROM accounts WHERE sdkappid = ? AND is_admin = 1)",
                         (sdkappid, sdkappid))
            conn.execute("DELETE FROM deletion_bans WHERE sdkappid = ?", (sdkappid,))
            conn.execute("UPDATE apps SET account_count = 0 WHERE sdkappid = ?", (sdkappid,))
            return deleted
        return await self._write(write)

    # --- portable state (timserver.portable) ------------------------------------------------
    async def list_kicks(self, sdkappid: int, *, after: str = "",
                         limit: int = 1000) -> list[tuple[str, int]]:
        return [(uid, at) for uid, at in self._read(
            "SELECT user_id, kicked_at FROM kicks WHERE sdkappid = ? AND user_id > ? "
            "ORDER BY user_id LIMIT ?", (sdkappid, after, limit))]

    async def restore_accounts(self, sdkappid: int, rows: Sequence[Account]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sdkappid, user_id) DO NOTHING",
                [(sdkappid, r.user_id, r.nick, r.face_url, r.created_at) for r in rows])
            created = conn.total_changes - before
            conn.executemany(
                "UPDATE accounts SET nick = ?, face_url = ?, created_at = ? "
                "WHERE sdkappid = ? AND user_id = ?",
                [(r.nick, r.face_url, r.created_at, sdkappid, r.user_id) for r in rows])
            if not conn.execute("UPDATE apps SET account_count = account_count + ? "
                                "WHERE sdkappid = ?", (created, sdkappid)).rowcount:
                raise StorageError(f"no app with SDKAppID {sdkappid}")
            return created
        return await self._write(write) if rows else 0

    async def restore_kicks(self, sdkappid: int, rows: Sequence[tuple[str, int]]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO kicks (sdkappid, user_id, kicked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sdkappid, user_id) DO UPDATE SET kicked_at = excluded.kicked_at",
                [(sdkappid, uid, at) for uid, at in rows])
        if rows:
            await self._write(write)

    async def replace_faults(self, sdkappid: int, rules: Sequence[FaultRecord]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM fault_rules WHERE sdkappid = ?", (sdkappid,))
            conn.executemany(
                "INSERT INTO fault_rules (sdkappid, spec, remaining, matched, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(sdkappid, r.spec, r.remaining, r.matched, r.created_at) for r in rules])
            _bump_emulator_version(conn)
        await self._write(write)


_FAULT_COLUMNS = "id, sdkappid, spec, remaining, matched, created_at"
_DEVICE_COLUMNS = "platform, status, inst_id, login_at"


def _bump_emulator_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'emulator_version'")


def _set_admins(conn: sqlite3.Connection, sdkappid: int, admins: Sequence[str]) -> None:
    """Make exactly ``admins`` the admin accounts of the app, keeping account_count exact."""
    now = time.time()
    conn.execute("UPDATE accounts SET is_admin = 0 WHERE sdkappid = ? AND is_admin = 1",
                 (sdkappid,))
    conn.executemany(
        "INSERT INTO accounts (sdkappid, user_id, is_admin, created_at) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (sdkappid, user_id) DO UPDATE SET is_admin = 1",
        [(sdkappid, uid, now) for uid in admins])
    conn.execute(
        "UPDATE apps SET account_count = (SELECT count(*) FROM accounts "
        "WHERE sdkappid = ? AND is_admin = 0) WHERE sdkappid = ?", (sdkappid, sdkappid))

