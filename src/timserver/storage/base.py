"""The small interface the service layer needs from a database.

Storage knows apps, accounts and kicks; it knows nothing of HTTP or Tencent's error codes.
Each write method is one atomic transaction that is durable when its coroutine returns.
Implementations: ``sqlite.py`` (the embedded default); PostgreSQL fills the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class StorageError(Exception):
    """The database failed (unreachable, locked, full...): nothing of the operation applied."""


class AppExists(StorageError):
    """An app with this SDKAppID already exists."""


@dataclass(frozen=True, slots=True)
class App:
    sdkappid: int
    key: str
    edition: str  # "developer" | "trial" | "pro"
    admins: tuple[str, ...]
    limits: dict[str, int] = field(default_factory=dict)  # command → calls/s set for this app
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class AccountWrite:
    """An account to import; a profile field left ``None`` keeps its stored value."""

    user_id: str
    nick: str | None = None
    face_url: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    nick: str | None
    face_url: str | None
    is_admin: bool
    created_at: float


class Storage(Protocol):
    url: str

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    # --- apps ---------------------------------------------------------------------------------
    async def apps_version(self) -> int:
        """A number that changes whenever any app's record changes (for caches)."""

    async def create_app(self, app: App) -> None:
        """Create an app; its admins become accounts (raises AppExists)."""

    async def get_app(self, sdkappid: int) -> App | None: ...

    async def list_apps(self) -> list[App]: ...

    async def update_app(self, sdkappid: int, *, key: str | None = None,
                         edition: str | None = None, admins: Sequence[str] | None = None,
                         limit: tuple[str, int] | None = None) -> App | None:
        """Change an app; returns the new record, or None when there is no such app."""

    # --- accounts -----------------------------------------------------------------------------
    async def import_accounts(self, sdkappid: int, items: Sequence[AccountWrite],
                              max_accounts: int | None) -> list[bool]:
        """Create or update accounts, in order, in one transaction.

        Returns, per item, whether it was applied: ``False`` means it was a new account refused
        because the app already holds ``max_accounts`` non-admin accounts.
        """

    async def existing(self, sdkappid: int, user_ids: Sequence[str]) -> set[str]:
        """Which of ``user_ids`` are accounts of the app (admins included)."""

    async def delete_accounts(self, sdkappid: int, user_ids: Sequence[str]) -> list[bool]:
        """Delete non-admin accounts in order, in one transaction; per item, whether it existed."""

    async def kick(self, sdkappid: int, user_id: str, at: int) -> bool:
        """Record a kick at ``at`` (Unix seconds); False when the account does not exist."""

    async def kicked_at(self, sdkappid: int, user_id: str) -> int | None: ...

    async def count_accounts(self, sdkappid: int) -> int:
        """Non-admin accounts of the app."""

    async def list_accounts(self, sdkappid: int, *, prefix: str = "", after: str = "",
                            limit: int = 100) -> list[Account]:
        """Accounts in UserID order, starting after ``after``, whose UserID starts with prefix."""
