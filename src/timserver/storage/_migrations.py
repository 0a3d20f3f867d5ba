"""Versioned schema migrations: ``migrations/<dialect>/NNNN_name.sql``, applied in order."""

from __future__ import annotations

from importlib import resources


def scripts(dialect: str) -> list[tuple[int, str]]:
    """(version, SQL text) of every migration of ``dialect``, oldest first."""
    folder = resources.files("timserver.storage") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)
