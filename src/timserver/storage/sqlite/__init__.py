"""The SQLite backend: ``engine.py`` (how: connections, snapshot reads, the memo, the writer
thread, the commit watch), ``store.py`` (what: the queries of ``SQLiteStorage``),
``snapshots.py`` (named snapshots: files next to the database)."""

from __future__ import annotations

from .engine import path_from_url
from .store import SQLiteStorage

__all__ = ["SQLiteStorage", "path_from_url"]
