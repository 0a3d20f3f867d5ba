"""Named snapshots of the data, whatever the backend: ``timserver snapshot save|restore|list|delete``.

What is common to both backends' snapshots (``sqlite/snapshots.py``: files next to the database;
``postgres/snapshots.py``: schemas inside it): the interface (``Snapshots``, reached through
``timserver.storage.snapshots_for(url)``), the name rule, and which tables a snapshot holds.

A snapshot holds and restores the *data*: apps (keys, admins, editions, limits, callbacks),
accounts, kicks, logged-in devices and deletion bans (a snapshot of an older timserver has no
devices nor bans: they are restored empty). Fault rules and the clock offset are controls of the
emulator, not data: a restore leaves them as they are. A restore is one transaction, safe while
servers run, and every running server drops its cached app records and kick times at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

DATA_TABLES = ("apps", "accounts", "kicks", "devices", "deletion_bans")
#: Tables a snapshot taken by an older timserver may lack: restored empty.
LATER_TABLES = frozenset({"devices", "deletion_bans"})
#: Admins' kicks survive a restore (and a reset): admins are never deleted, and a UserSig of an
#: admin that was revoked stays revoked. Taken before the restore into ``kept_kicks``...
ADMIN_KICKS = ("SELECT k.sdkappid, k.user_id, k.kicked_at FROM {db}kicks k JOIN {db}accounts a "
               "ON a.sdkappid = k.sdkappid AND a.user_id = k.user_id WHERE a.is_admin")
#: ... and put back after it, for the accounts the restored data has, keeping the later kick.
KEEP_ADMIN_KICKS = (
    "INSERT INTO {db}kicks (sdkappid, user_id, kicked_at) SELECT sdkappid, user_id, kicked_at "
    "FROM kept_kicks k WHERE EXISTS (SELECT 1 FROM {db}accounts a WHERE a.sdkappid = k.sdkappid "
    "AND a.user_id = k.user_id) ON CONFLICT (sdkappid, user_id) DO UPDATE SET "
    "kicked_at = {later}(kicks.kicked_at, excluded.kicked_at)")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SnapshotError(ValueError):
    """A snapshot operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    path: str  # where it is kept, for people: a file, or "schema timserver_snapshot_N"
    size: int
    created: float
    apps: int | None  # None when the snapshot cannot be read
    accounts: int | None


def check_name(name: str) -> str:
    """One rule on both backends: 1 to 64 letters, digits, ``_``, ``-`` or ``.``."""
    if not NAME_RE.fullmatch(name) or name.endswith(".tmp"):
        raise SnapshotError(f"bad snapshot name {name!r}: use 1 to 64 letters, digits, '_', '-' "
                            "or '.', starting with a letter or digit")
    return name


class Snapshots(Protocol):
    """The snapshots of one database (its URL); every failure is a ``SnapshotError``."""

    url: str

    def check(self, name: str) -> None:
        """Whether ``name`` is good, before the database is opened."""

    def save(self, name: str, *, overwrite: bool = False) -> SnapshotInfo:
        """Copy the data into snapshot ``name`` (consistently, while servers run)."""

    def restore(self, name: str) -> SnapshotInfo:
        """Replace the data by snapshot ``name``'s, in one transaction."""

    def list_snapshots(self) -> list[SnapshotInfo]: ...

    def delete(self, name: str) -> None: ...
