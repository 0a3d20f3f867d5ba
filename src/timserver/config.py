"""Where timserver keeps its data when not told otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$TIMSERVER_HOME``, else ``$XDG_DATA_HOME/timserver`` (``~/.local/share/timserver``)."""
    if os.environ.get("TIMSERVER_HOME"):
        return Path(os.environ["TIMSERVER_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "timserver"


def default_db() -> str:
    """``$TIMSERVER_DB``, else a SQLite file in the data folder."""
    return os.environ.get("TIMSERVER_DB") or f"sqlite:///{data_dir() / 'timserver.db'}"


def redact_url(url: str) -> str:
    """A database or Redis URL fit to print: any password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
