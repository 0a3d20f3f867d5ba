"""Storage backends behind one interface (``base.Storage``), chosen by database URL."""

from __future__ import annotations

from .base import (
    Account,
    AccountWrite,
    App,
    AppExists,
    Callback,
    Device,
    FaultRecord,
    Storage,
    StorageError,
)

__all__ = ["Account", "AccountWrite", "App", "AppExists", "Callback", "Device", "FaultRecord",
           "Storage", "StorageError", "make_storage"]


def make_storage(url: str) -> Storage:
    """A storage for ``url``: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStorage

        return PostgresStorage(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                     "postgresql://USER@HOST:PORT/DB")
