"""The PostgreSQL backend: ``engine.py`` (how: the pool, LISTEN/NOTIFY and its heartbeat, the
versions counter and the kicks cache), ``store.py`` (what: the queries of ``PostgresStorage``),
``snapshots.py`` (named snapshots: schemas inside the database)."""

from __future__ import annotations

from .store import PostgresStorage

__all__ = ["PostgresStorage"]
