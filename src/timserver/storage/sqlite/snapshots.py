"""Named snapshots of a SQLite database (the interface and what they hold: ``storage/snapshots.py``).

A snapshot is a consistent copy of the whole database file made with ``VACUUM INTO`` (a read
transaction: a running server goes on serving), kept as ``NAME.db`` in the folder
``<database file>.snapshots/`` next to the database.

Restore is safe while servers run: it copies the snapshot's tables back into the live database
in one write transaction (``BEGIN IMMEDIATE``; servers' writes wait for it, their reads see the
old data or the new, never a mix), and bumps ``apps_version`` in the same transaction, so that
every server drops its cached app records on its next call (and any commit empties their read
memo, kick times included). Columns are matched by name, so a snapshot taken before a later
migration still restores when the new columns have defaults.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ... import private
from ..snapshots import (
    ADMIN_KICKS,
    DATA_TABLES,
    KEEP_ADMIN_KICKS,
    LATER_TABLES,
    NAME_RE,
    SnapshotError,
    SnapshotInfo,
    check_name,
)
from .engine import path_from_url

_BUSY_TIMEOUT_MS = 10_000


def _db_path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise SnapshotError("snapshots need a sqlite:///PATH or postgresql:// database URL")
    return Path(path_from_url(url))


def folder(url: str) -> Path:
    path = _db_path(url)
    return path.with_name(path.name + ".snapshots")


def _file(url: str, name: str) -> Path:
    check_name(name)
    return folder(url) / f"{name}.db"


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rw")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn


def _counts(path: Path) -> tuple[int | None, int | None]:
    try:
        conn = _connect(path, read_only=True)
        try:
            (apps,) = conn.execute("SELECT count(*) FROM apps").fetchone()
            (accounts,) = conn.execute("SELECT count(*) FROM accounts WHERE is_admin = 0").fetchone()
            return apps, accounts
        finally:
            conn.close()
    except sqlite3.Error:
        return None, None


def _info(name: str, path: Path) -> SnapshotInfo:
    stat = path.stat()
    return SnapshotInfo(name, str(path), stat.st_size, stat.st_mtime, *_counts(path))


def _database(url: str) -> Path:
    path = _db_path(url)
    if not path.is_file():
        raise SnapshotError(f"no database at {path}")
    return path


def save(url: str, name: str, *, overwrite: bool = False) -> SnapshotInfo:
    """Copy the database into snapshot ``name`` (consistently, while servers run)."""
    target = _file(url, name)
    database = _database(url)
    if target.exists() and not overwrite:
        raise SnapshotError(f"snapshot {name!r} exists already (use --force to replace it)")
    partial = target.with_name(f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    conn = _connect(database)
    try:
        # A snapshot holds the apps' keys: 0600 in a 0700 folder. VACUUM INTO fills an empty
        # file that exists (it would create a missing one with the umask's permissions).
        private.make_folder(target.parent)
        private.create_file(partial)
        conn.execute("VACUUM INTO ?", (str(partial),))
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"cannot save snapshot {name!r}: {exc.strerror}") from None
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"cannot save snapshot {name!r}: {exc}") from None
    finally:
        conn.close()
    os.replace(partial, target)  # atomic: a snapshot is whole or absent
    return _info(name, target)


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def restore(url: str, name: str) -> SnapshotInfo:
    """Replace the database's data tables (apps, accounts, kicks, devices, deletion bans) by
    the snapshot's, in one transaction."""
    source = _file(url, name)
    if not source.is_file():
        raise SnapshotError(f"no snapshot {name!r} (timserver snapshot list shows them)")
    conn = _connect(_database(url))
    try:
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("ATTACH DATABASE ? AS snap", (source.resolve().as_uri() + "?mode=ro",))
        plan = []
        for table in DATA_TABLES:
            theirs = set(_columns(conn, "snap", table))
            if not theirs and table in LATER_TABLES:
                plan.append((table, ""))
                continue
            if not theirs:
                raise SnapshotError(f"snapshot {name!r} has no {table} table: it is not a "
                                    "timserver snapshot")
            shared = [c for c in _columns(conn, "main", table) if c in theirs]
            plan.append((table, ", ".join(shared)))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TEMP TABLE kept_kicks AS {ADMIN_KICKS.format(db='main.')}")
            for table, _ in reversed(plan):
                conn.execute(f"DELETE FROM main.{table}")
            for table, cols in plan:
                if cols:
                    conn.execute(f"INSERT INTO main.{table} ({cols}) "
                                 f"SELECT {cols} FROM snap.{table}")
            conn.execute(KEEP_ADMIN_KICKS.format(db="main.", later="max"))
            conn.execute("DROP TABLE temp.kept_kicks")
            # Every server drops its cached app records on its next call.
            conn.execute("UPDATE main.meta SET value = value + 1 WHERE name = 'apps_version'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("DETACH DATABASE snap")
    except sqlite3.Error as exc:
        raise SnapshotError(f"cannot restore snapshot {name!r}: {exc}") from None
    finally:
        conn.close()
    return _info(name, source)


def list_snapshots(url: str) -> list[SnapshotInfo]:
    found = folder(url)
    if not found.is_dir():
        return []
    return [_info(path.stem, path) for path in sorted(found.glob("*.db"))
            if NAME_RE.fullmatch(path.stem)]


def delete(url: str, name: str) -> None:
    target = _file(url, name)
    if not target.is_file():
        raise SnapshotError(f"no snapshot {name!r}")
    target.unlink()


class SQLiteSnapshots:
    """``Snapshots`` of a ``sqlite:///PATH`` database: files in ``PATH.snapshots/``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def check(self, name: str) -> None:
        _file(self.url, name)

    def save(self, name: str, *, overwrite: bool = False) -> SnapshotInfo:
        return save(self.url, name, overwrite=overwrite)

    def restore(self, name: str) -> SnapshotInfo:
        return restore(self.url, name)

    def list_snapshots(self) -> list[SnapshotInfo]:
        return list_snapshots(self.url)

    def delete(self, name: str) -> None:
        delete(self.url, name)
