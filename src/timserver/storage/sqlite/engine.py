"""The SQLite engine: HOW timserver uses a SQLite file, nothing of WHAT it stores.

Two connections per process, in WAL mode:

* reads run inline on the event loop thread. An indexed lookup of 100 keys takes tens of
  microseconds, far less than a hop to a thread pool and back; WAL readers never wait for writers.
  Reads share one read transaction (a snapshot) until anything commits (``read``), and what every
  call asks (versions, kicks) is kept until the next commit (``read_kept``): the commit watch
  (``CommitWatch``, the ``-shm`` header) tells cheaply whether any process committed.
* writes go to one writer thread, which practises *group commit*: it takes every write waiting in
  its queue, runs each in its own SAVEPOINT (so one failing write undoes only itself), commits
  them together with one fsync (``synchronous=FULL``), and only then answers each caller. So an
  answer is sent only once its writes are durable, while many concurrent calls share one fsync.

Several processes (``serve --workers N``, the CLI) may use one file; SQLite's locking and
``busy_timeout`` serialise their writers. The queries are in ``store.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ... import private
from .._migrations import scripts
from ..base import StorageError

log = logging.getLogger("timserver.storage.sqlite")
T = TypeVar("T")
Rows = list[tuple[Any, ...]]
_MAX_GROUP = 256  # writes committed together at most
_BUSY_TIMEOUT_MS = 5000
_MEMO_ROWS = 10_000  # reads kept until the next commit (versions, kicks of each identifier)
SNAPSHOT_SECONDS = 0.1  # the longest the reader keeps one read transaction (see read)
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


class CommitWatch:
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


class Writer:
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



class SQLiteEngine:
    """One database file: its reader connection and snapshot, the memo, the writer thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.writer: Writer | None = None
        self.watch: CommitWatch | None = None
        self._reader: sqlite3.Connection | None = None
        self._memo: dict[Any, Rows] = {}  # reads kept until the next commit
        self._memo_epoch = -1
        self._snapshot_epoch = -1  # the reader's open read transaction, taken at this epoch
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._snapshot_loop: asyncio.AbstractEventLoop | None = None
        self._write_failed_at: float | None = None  # the last write failed then (monotonic)

    # --- life cycle ---------------------------------------------------------------------------
    def open(self) -> None:
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
            self.writer = Writer(self.path)
            self._reader = _connect(self.path)
            # Reads run on the event loop: never let a lock stall it for long.
            self._reader.execute("PRAGMA busy_timeout = 250")
            self.watch = CommitWatch(self.path)  # after the reader: its -shm file exists
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc

    def close(self) -> None:
        self._end_snapshot()
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # --- reads --------------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Rows of a query, on the reader connection, in the event loop's thread.

        Reads share one read transaction (a snapshot) for as long as nothing commits, at most
        ``SNAPSHOT_SECONDS``: a statement outside a transaction begins and ends its own, which
        costs SQLite several system calls (file locks), as much as a small query itself. A
        commit by any connection moves the commit watch's epoch and the next read starts a new
        snapshot, so a read never misses a commit that was answered before it began.
        """
        assert self._reader is not None, "storage is not open"
        try:
            if self.watch is not None and self.watch.reliable:
                epoch = self.watch.epoch()
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

    def read_kept(self, sql: str, params: tuple[Any, ...] = ()) -> Rows:
        """``read`` for what every call asks (versions, kicks): the rows are kept until any
        connection, of any process, commits (``CommitWatch``); a new commit empties the memo."""
        epoch = self.watch.epoch() if self.watch is not None else -1
        if epoch != self._memo_epoch or epoch < 0:
            self._memo.clear()
            self._memo_epoch = epoch
        key = (sql, params)
        rows = self._memo.get(key)
        if rows is None:
            rows = self.read(sql, params)
            if len(self._memo) >= _MEMO_ROWS:  # many identifiers: start over
                self._memo.clear()
            self._memo[key] = rows
        return rows

    # --- writes -------------------------------------------------------------------------------
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer's connection in a transaction of its own (a SAVEPOINT of a
        group commit); its result once durable. A failure of the database, not of ``fn``'s
        request, marks the writes failed for ``health`` until a write succeeds."""
        assert self.writer is not None, "storage is not open"
        try:
            result = await self.writer.submit(fn)
        except _WriteFailed:
            self._write_failed_at = time.monotonic()
            raise
        self._write_failed_at = None
        return result

    @contextlib.asynccontextmanager
    async def page_cache(self, kib: int) -> AsyncIterator[None]:
        """The writer's page cache at ``kib`` KiB meanwhile (a bulk load: a B-tree of millions of
        keys then rarely reads a page back from the file); its own size restored afterwards."""
        def cache(size: int | None) -> Callable[[sqlite3.Connection], int]:
            def write(conn: sqlite3.Connection) -> int:
                (before,) = conn.execute("PRAGMA cache_size").fetchone()
                if size is not None:
                    conn.execute(f"PRAGMA cache_size = {int(size)}")
                return before
            return write

        before = await self.write(cache(-kib))
        try:
            yield
        finally:
            await self.write(cache(before))

    # --- health -------------------------------------------------------------------------------
    def ping(self) -> None:
        self.read("SELECT 1")

    async def health(self) -> dict[str, bool]:
        """What /readyz reports beyond ``ping``: whether the last write succeeded (reads go on
        working on a full disk, and would keep a server that cannot write "ready"). A server
        that is not ready gets no calls, so no write of theirs can clear it: once the failure
        is ``WRITE_PROBE_AFTER`` old, each readiness check tries a small write of its own."""
        failed_at = self._write_failed_at
        if failed_at is not None and time.monotonic() - failed_at >= WRITE_PROBE_AFTER:
            try:
                await self.write(_probe_write)
            except StorageError:
                pass
        return {"writes": self._write_failed_at is None}


def _probe_write(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (name, value) VALUES ('write_probe', 1) "
                 "ON CONFLICT (name) DO UPDATE SET value = value + 1")
