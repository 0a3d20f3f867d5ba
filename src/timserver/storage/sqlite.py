"""SQLite storage: the embedded default.

Two connections per process, in WAL mode:

* reads run inline on the event loop thread. An indexed lookup of 100 keys takes tens of
  microseconds, far less than a hop to a thread pool and back; WAL readers never wait for writers.
* writes go to one writer thread, which practises *group commit*: it takes every write waiting in
  its queue, runs each in its own SAVEPOINT (so one failing write undoes only itself), commits
  them together with one fsync (``synchronous=FULL``), and only then answers each caller. So an
  answer is sent only once its writes are durable, while many concurrent calls share one fsync.

Several processes (``serve --workers N``, the CLI) may use one file; SQLite's locking and
``busy_timeout`` serialise their writers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mmap
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .. import private
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

log = logging.getLogger("timserver.storage.sqlite")
T = TypeVar("T")
_MAX_GROUP = 256  # writes committed together at most
_BUSY_TIMEOUT_MS = 5000
_BULK_CACHE_KIB = 256 * 1024  # page cache of the writer during a bulk load
_MEMO_ROWS = 10_000  # reads kept until the next commit (versions, kicks of each identifier)
WRITE_PROBE_AFTER = 5.0  # seconds after a failed write before /readyz tries a write of its own


class _WriteFailed(StorageError):
    """The database failed a write (disk full, I/O error, locked for too long...), as opposed
    to a write refused for what it asked (a constraint): readiness follows the first kind."""


def path_from_url(url: str) -> str:
    """``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's convention)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///PATH)")
    path = url[len("sqlite:///"):]
    if not path:
        raise ValueError("the SQLite URL names no file")
    return path


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=_BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # the commit's fsync makes the answer durable
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                     "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, script in scripts("sqlite"):
            if version in done:
                continue
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        if sqlite3.complete_statement("\n".join(current)):
            statements.append("\n".join(current))
            current = []
    return [s for s in statements if s.strip()]


class _CommitWatch:
    """Tells cheaply whether any connection, of any process, may have committed since last asked.

    In WAL mode each commit rewrites the WAL-index header, the first 48 bytes of the ``-shm``
    file (the way SQLite's own readers notice new data: https://sqlite.org/walformat.html).
    Reading them costs far less than a query: from a shared mapping of the file, as SQLite itself
    reads it (no system call), else with one ``pread``. ``epoch()`` moves whenever those bytes do
    (a torn read only moves it once more); without a readable ``-shm`` file it moves every time.

    The mapping is safe while this process holds a connection to the database: SQLite shrinks
    the ``-shm`` file only when the first connection of all opens it (the storage opens the
    watch after its reader connection and closes it before).
    """

    _HEADER = 48

    def __init__(self, path: str) -> None:
        self._map: mmap.mmap | None = None
        try:
            self._fd: int | None = os.open(f"{path}-shm", os.O_RDONLY)
        except OSError:
            self._fd = None
        if self._fd is not None:
            try:
                if os.fstat(self._fd).st_size >= self._HEADER:
                    self._map = mmap.mmap(self._fd, self._HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
            except (OSError, ValueError):
                self._map = None
        self._header = b""
        self._epoch = 0

    @property
    def reliable(self) -> bool:
        """Whether the epoch moves only on commits (else it moves on every ask)."""
        return self._fd is not None

    def epoch(self) -> int:
        if self._map is not None:
            header = self._map[:self._HEADER]
        elif self._fd is not None:
            try:
                header = os.pread(self._fd, self._HEADER, 0)
            except OSError:
                header = b""
        else:
            header = b""
        if len(header) != self._HEADER or header != self._header:
            self._header = header
            self._epoch += 1
        return self._epoch

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Writer:
    """One thread that owns the write connection and commits waiting writes in groups."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="timserver-sqlite-writer",
                                        daemon=True)
        self._conn = _connect(path)
        _migrate(self._conn)
        self._thread.start()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < _MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._commit_group(jobs)
            if stop:
                return

    def _commit_group(self, jobs: list[Any]) -> None:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _, _ in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    result = fn(conn)
                except Exception as exc:  # this write alone is undone; the others go on
                    if not conn.in_transaction:  # SQLite undid them all (disk full, I/O error)
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    if isinstance(exc, sqlite3.IntegrityError):
                        exc = StorageError(f"SQLite: {exc}")
                    elif isinstance(exc, sqlite3.Error):
                        exc = _WriteFailed(f"SQLite: {exc}")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            error = _WriteFailed(f"SQLite commit failed: {exc}")
            outcomes = [(False, error)] * len(jobs)
        for (_, loop, future), outcome in zip(jobs, outcomes, strict=True):
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # that caller's loop is closed: nobody waits any more
                pass


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _app_from_row(row: tuple[Any, ...]) -> App:
    sdkappid, key, edition, admins, limits, created_at, allow_delete, callback = row
    return App(sdkappid=sdkappid, key=key, edition=edition, admins=tuple(json.loads(admins)),
               limits=json.loads(limits), created_at=created_at,
               allow_delete=bool(allow_delete), callback=callback_from_json(callback))


_APP_COLUMNS = "sdkappid, secret_key, edition, admins, limits, created_at, allow_delete, callback"
_APP_INSERT = "sdkappid, secret_key, edition, admins, limits, created_at"


def _bump_apps_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")


SNAPSHOT_SECONDS = 0.1  # the longest the reader keeps one read transaction (see _read)
_SHORT_LIST = 8  # up to this many UserIDs, a list of placeholders; above, one JSON array
_json_encode = msgspec.json.Encoder().encode


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class SQLiteStorage:
    #: Reads run inline and writes only wait for the writer thread's futures: nothing here is
    #: bound to the calling task, so callers may start this work inline (``dispatch.within``).
    runs_inline = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._writer: _Writer | None = None
        self._reader: sqlite3.Connection | None = None
        self._watch: _CommitWatch | None = None
        self._memo: dict[Any, list[tuple[Any, ...]]] = {}  # reads kept until the next commit
        self._memo_epoch = -1
        self._snapshot_epoch = -1  # the reader's open read transaction, taken at this epoch
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._snapshot_loop: asyncio.AbstractEventLoop | None = None
        self._write_failed_at: float | None = None  # the last write failed then (monotonic)

    # --- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        # The file holds every app's key: 0600 in a 0700 folder. SQLite gives the -wal and
        # -shm files it creates later the permissions of the database file.
        try:
            private.make_folder(Path(self.path).parent)
            private.create_file(self.path)
            for suffix in ("-wal", "-shm"):
                private.restrict(self.path + suffix)
        except OSError as exc:
            raise StorageError(f"cannot create SQLite database {self.path}: {exc.strerror}") from exc
        try:
            self._writer = _Writer(self.path)
            self._reader = _connect(self.path)
            # Reads run on the event loop: never let a lock stall it for long.
            self._reader.execute("PRAGMA busy_timeout = 250")
            self._watch = _CommitWatch(self.path)  # after the reader: its -shm file exists
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc

    async def close(self) -> None:
        self._end_snapshot()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query, on the reader connection, in the event loop's thread.

        Reads share one read transaction (a snapshot) for as long as nothing commits, at most
        ``SNAPSHOT_SECONDS``: a statement outside a transaction begins and ends its own, which
        costs SQLite several system calls (file locks), as much as a small query itself. A
        commit by any connection moves the commit watch's epoch and the next read starts a new
        snapshot, so a read never misses a commit that was answered before it began.
        """
        assert self._reader is not None, "storage is not open"
        try:
            if self._watch is not None and self._watch.reliable:
                epoch = self._watch.epoch()
                if epoch != self._snapshot_epoch:
                    self._begin_snapshot(epoch)
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._end_snapshot()
            raise StorageError(f"SQLite: {exc}") from exc

    def _begin_snapshot(self, epoch: int) -> None:
        """A new read transaction; the epoch is read before it begins, so that the snapshot
        holds at least every commit that epoch stands for."""
        reader = self._reader
        assert reader is not None
        self._snapshot_epoch = -1
        if reader.in_transaction:
            reader.execute("COMMIT")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to end it later: each statement is its own transaction
            return
        reader.execute("BEGIN")  # deferred: the snapshot is taken by the first read in it
        self._snapshot_epoch = epoch
        if self._snapshot_timer is None or self._snapshot_loop is not loop:
            # Ended soon whatever happens: an old snapshot would keep the WAL from being reset.
            self._snapshot_loop = loop
            self._snapshot_timer = loop.call_later(SNAPSHOT_SECONDS, self._end_snapshot)

    def _end_snapshot(self) -> None:
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None
        self._snapshot_epoch = -1
        reader = self._reader
        if reader is not None and reader.in_transaction:
            try:
                reader.execute("COMMIT")
            except sqlite3.Error:
                log.warning("could not end the reader's snapshot", exc_info=True)

    def _read_kept(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """``_read`` for what every call asks (versions, kicks): the rows are kept until any
        connection, of any process, commits (``_CommitWatch``); a new commit empties the memo."""
        epoch = self._watch.epoch() if self._watch is not None else -1
        if epoch != self._memo_epoch or epoch < 0:
            self._memo.clear()
            self._memo_epoch = epoch
        key = (sql, params)
        rows = self._memo.get(key)
        if rows is None:
            rows = self._read(sql, params)
            if len(self._memo) >= _MEMO_ROWS:  # many identifiers: start over
                self._memo.clear()
            self._memo[key] = rows
        return rows

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._writer is not None, "storage is not open"
        try:
            result = await self._writer.submit(fn)
        except _WriteFailed:
            self._write_failed_at = time.monotonic()
            raise
        self._write_failed_at = None
        return result

    async def ping(self) -> None:
        self._read("SELECT 1")

    async def health(self) -> dict[str, bool]:
        """What /readyz reports beyond ``ping``: whether the last write succeeded (reads go on
        working on a full disk, and would keep a server that cannot write "ready"). A server
        that is not ready gets no calls, so no write of theirs can clear it: once the failure
        is ``WRITE_PROBE_AFTER`` old, each readiness check tries a small write of its own."""
        failed_at = self._write_failed_at
        if failed_at is not None and time.monotonic() - failed_at >= WRITE_PROBE_AFTER:
            try:
                await self._write(_probe_write)
            except StorageError:
                pass
        return {"writes": self._write_failed_at is None}

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

        def cache(size: int | None) -> Callable[[sqlite3.Connection], int]:
            def write(conn: sqlite3.Connection) -> int:
                (before,) = conn.execute("PRAGMA cache_size").fetchone()
                if size is not None:
                    conn.execute(f"PRAGMA cache_size = {int(size)}")
                return before
            return write

        # A big page cache while loading: a B-tree of millions of keys then rarely reads a page
        # back from the file; the connection's own size is restored afterwards.
        before = await self._write(cache(-_BULK_CACHE_KIB))
        try:
            return await pipelined_load(rows, batch_size, lambda merged: self._write(load(merged)),
                                        progress)
        finally:
            await self._write(cache(before))

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


def _probe_write(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (name, value) VALUES ('write_probe', 1) "
                 "ON CONFLICT (name) DO UPDATE SET value = value + 1")


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
