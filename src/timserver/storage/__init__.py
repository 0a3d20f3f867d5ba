"""Storage backends behind one interface (``base.Storage``), chosen by database URL.

Every choice made by URL is made here, once (``_backend``): the storage (``make_storage``), its
snapshots (``snapshots_for``), whether it exists (``exists``). Each backend is a package:
``engine.py`` (how it talks to its database), ``store.py`` (what it stores: the queries),
``snapshots.py``.
"""

from __future__ import annotations

import os

from .base import (
    Account,
    AccountStore,
    AccountWrite,
    App,
    AppExists,
    AppStore,
    Callback,
    Capabilities,
    Database,
    Device,
    EmulatorStore,
    FaultRecord,
    LoginStore,
    PortableStore,
    Storage,
    StorageError,
)
from .snapshots import SnapshotError, SnapshotInfo, Snapshots

__all__ = ["Account", "AccountStore", "AccountWrite", "App", "AppExists", "AppStore", "Callback",
           "Capabilities", "Database", "Device", "EmulatorStore", "FaultRecord", "LoginStore",
           "PortableStore", "SnapshotError", "SnapshotInfo", "Snapshots", "Storage",
           "StorageError", "exists", "make_storage", "snapshots_for"]

_URLS = "sqlite:///PATH or postgresql://USER@HOST:PORT/DB"


def _backend(url: str) -> str | None:
    """``"sqlite"`` or ``"postgres"``: the backend of a database URL (None: no backend's)."""
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgres"
    return None


def make_storage(url: str) -> Storage:
    """A storage for ``url``: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``."""
    backend = _backend(url)
    if backend == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if backend == "postgres":
        from .postgres import PostgresStorage  # asyncpg: imported only when needed

        return PostgresStorage(url)
    raise ValueError(f"unsupported database URL {url!r}: use {_URLS}")


def exists(url: str) -> bool:
    """Whether the database at ``url`` may hold anything, without creating or opening it: False
    only for a SQLite file that is not there (a server's database is assumed to exist)."""
    if _backend(url) == "sqlite":
        return os.path.exists(url[len("sqlite:///"):])
    return True


def snapshots_for(url: str) -> Snapshots:
    """The named snapshots of the database at ``url`` (files next to SQLite, schemas inside
    PostgreSQL); SnapshotError for a URL of neither."""
    backend = _backend(url)
    if backend == "sqlite":
        from .sqlite.snapshots import SQLiteSnapshots

        return SQLiteSnapshots(url)
    if backend == "postgres":
        from .postgres.snapshots import PostgresSnapshots

        return PostgresSnapshots(url)
    raise SnapshotError("snapshots need a sqlite:///PATH or postgresql:// database URL")
