"""The small interface the service layer needs from a database.

Storage knows apps, accounts and kicks; it knows nothing of HTTP or Tencent's error codes.
Each write method is one atomic transaction that is durable when its coroutine returns.
The interface is split into the roles its callers need (``AppStore``, ``AccountStore``,
``LoginStore``, ``EmulatorStore``, ``PortableStore``, with ``Database`` for the life cycle);
``Storage`` is their union, and ``Capabilities`` says what a backend offers beyond them.
Implementations: ``sqlite/`` (the embedded default) and ``postgres/``, each an engine (how)
and a store (what: the queries).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class StorageError(Exception):
    """The database failed (unreachable, locked, full...): nothing of the operation applied."""


class AppExists(StorageError):
    """An app with this SDKAppID already exists."""


@dataclass(frozen=True, slots=True)
class Callback:
    """Where an app's third-party callbacks go (docs/protocol.md §11.3)."""

    url: str
    token: str | None = None
    commands: tuple[str, ...] = ()  # the callback commands switched on


@dataclass(frozen=True, slots=True)
class App:
    sdkappid: int
    key: str
    edition: str  # "developer" | "trial" | "pro"
    admins: tuple[str, ...]
    limits: dict[str, int] = field(default_factory=dict)  # command → calls/s set for this app
    created_at: float = 0.0
    allow_delete: bool = False  # pro: account_delete switched on (app allow-delete)
    callback: Callback | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """One logged-in device of an account (simulated logins, docs/emulator.md)."""

    platform: str  # iPhone, Android, Web, PC, iPad, Mac
    status: str  # "Online" | "PushOnline" (a device that is Offline has no row)
    inst_id: int
    login_at: float  # Unix seconds on the app's clock


DeviceChange = Callable[[list[Device]], list[Device]]


def callback_json(callback: Callback | None) -> str | None:
    """How both backends store an app's callback configuration (the ``apps.callback`` column)."""
    if callback is None:
        return None
    return json.dumps({"Url": callback.url, "Token": callback.token,
                       "Commands": list(callback.commands)})


def callback_from_json(text: str | None) -> Callback | None:
    if not text:
        return None
    data = json.loads(text)
    return Callback(data["Url"], data.get("Token"), tuple(data.get("Commands") or ()))


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


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A stored fault rule of the emulator; ``spec`` is JSON text only the emulator reads."""

    id: int
    sdkappid: int
    spec: str
    remaining: int | None  # "next N matching calls" left; None when the rule has no count
    matched: int  # matching calls counted so far
    created_at: float


async def _no_health() -> Mapping[str, bool]:
    return {}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend offers beyond the roles; each has a default, meaning "not offered"."""

    #: True when no method uses anything bound to the calling task (``asyncio.timeout``, task
    #: groups) before it first waits: then callers may start its work inline instead of in a
    #: task of its own (``server.dispatch.within(..., eager=True)``).
    runs_inline: bool = False
    #: What /readyz reports beyond ``ping`` (``{"writes": ...}``, ``{"listener": ...}``).
    health: Callable[[], Awaitable[Mapping[str, bool]]] = _no_health
    #: (connections, idle connections) of a connection pool, for the metrics.
    pool_stats: Callable[[], tuple[int, int]] | None = None


# --- the roles: what each kind of caller needs -------------------------------------------------


class Database(Protocol):
    """A database's life cycle, whatever it stores."""

    url: str
    capabilities: Capabilities

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """A round trip to the database; raises StorageError when it does not answer."""


class AppStore(Protocol):
    """Apps and their configuration (the service's app cache, the admin CLI, the console)."""

    async def apps_version(self) -> int:
        """A number that changes whenever any app's record changes (for caches)."""

    async def create_app(self, app: App) -> None:
        """Create an app; its admins become accounts (raises AppExists)."""

    async def get_app(self, sdkappid: int) -> App | None: ...

    async def list_apps(self) -> list[App]: ...

    async def update_app(self, sdkappid: int, *, key: str | None = None,
                         edition: str | None = None, admins: Sequence[str] | None = None,
                         limit: tuple[str, int] | None = None,
                         allow_delete: bool | None = None, callback: Callback | None = None,
                         clear_callback: bool = False) -> App | None:
        """Change an app; returns the new record, or None when there is no such app."""


class AccountStore(Protocol):
    """Accounts and kicks (account management, the request pipeline's kick check)."""

    async def import_accounts(self, sdkappid: int, items: Sequence[AccountWrite],
                              max_accounts: int | None) -> list[bool]:
        """Create or update accounts, in order, in one transaction.

        Returns, per item, whether it was applied: ``False`` means it was a new account refused
        because the app already holds ``max_accounts`` non-admin accounts.
        """

    async def bulk_load(self, sdkappid: int, rows: Iterable[AccountWrite], *,
                        batch_size: int = 50_000,
                        progress: Callable[[int], None] | None = None) -> int:
        """Create or update many accounts straight in the database (``timserver accounts load``).

        For migrations: no API, no rate limit, no trial cap (the caller checks the edition).
        ``rows`` is consumed as it comes (a file of millions need not fit in memory); each batch of
        ``batch_size`` rows is one transaction, durable when the next one starts, so an
        interrupted load keeps its finished batches and a rerun is idempotent. A row updates an
        existing account as ``import_accounts`` does (a ``None`` profile field keeps its value);
        admin flags are never changed. ``progress(n)`` is called with the rows of each committed
        batch. Returns how many accounts were created.
        """

    async def existing(self, sdkappid: int, user_ids: Sequence[str]) -> set[str]:
        """Which of ``user_ids`` are accounts of the app (admins included)."""

    async def delete_accounts(self, sdkappid: int, user_ids: Sequence[str],
                              banned_until: float | None = None) -> list[bool]:
        """Delete non-admin accounts in order, in one transaction, with their devices; per
        item, whether it existed. With ``banned_until``, each deleted UserID may not be
        imported again before that time (``banned``)."""

    async def kick(self, sdkappid: int, user_id: str, at: int) -> bool:
        """Record a kick at ``at`` (Unix seconds); False when the account does not exist."""

    async def kicked_at(self, sdkappid: int, user_id: str) -> int | None: ...

    async def unkick(self, sdkappid: int, user_id: str | None = None) -> int:
        """Forget the kick of ``user_id`` (None: every kick of the app); how many were removed."""

    async def count_accounts(self, sdkappid: int) -> int:
        """Non-admin accounts of the app."""

    async def list_accounts(self, sdkappid: int, *, prefix: str = "", after: str = "",
                            limit: int = 100) -> list[Account]:
        """Accounts in UserID order, starting after ``after``, whose UserID starts with prefix."""


class LoginStore(Protocol):
    """Simulated login state (docs/protocol.md §11.2): devices, profiles, deletion bans."""

    async def profiles(self, sdkappid: int,
                       user_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """(nick, face_url) of those of ``user_ids`` that are accounts of the app."""

    async def set_profile(self, sdkappid: int, user_id: str, nick: str | None,
                          face_url: str | None) -> bool:
        """Set an existing account's profile fields (None keeps one); False: no such account."""

    async def banned(self, sdkappid: int, user_ids: Sequence[str], now: float) -> dict[str, float]:
        """Which of ``user_ids`` may not be imported before a later time, and that time."""

    async def devices(self, sdkappid: int, user_ids: Sequence[str]) -> dict[str, list[Device]]:
        """The devices of those of ``user_ids`` that have any, in platform order."""

    async def change_devices(self, sdkappid: int, user_id: str,
                             change: DeviceChange) -> tuple[list[Device], list[Device]] | None:
        """Replace an account's devices by ``change(devices)`` in one transaction (``change``
        is plain Python, run once inside it); returns (before, after), or None, changing
        nothing, when the account does not exist."""


class EmulatorStore(Protocol):
    """The emulator's controls (timserver.emulator, docs/emulator.md): faults, clocks, reset."""

    async def emulator_version(self) -> int:
        """A number that changes whenever fault rules or a clock offset change (for caches)."""

    async def add_fault(self, sdkappid: int, spec: str, remaining: int | None) -> FaultRecord:
        """Store a fault rule of the app and return it with its id."""

    async def list_faults(self, sdkappid: int | None = None) -> list[FaultRecord]:
        """The fault rules of one app (or of every app), oldest first."""

    async def delete_faults(self, sdkappid: int, rule_id: int | None = None) -> int:
        """Delete one fault rule of the app, or all of them; returns how many were deleted."""

    async def add_fault_matches(self, counts: Mapping[int, int]) -> None:
        """Add to rules' ``matched`` counts (rules that fire on every call are counted in
        memory and written in batches, not one write per call); gone rules are skipped."""

    async def hit_fault(self, rule_id: int) -> int | None:
        """Count one call matching a rule, atomically across every process using the database.

        Returns k, the number of this call among the rule's matching calls (1, 2, ...), and
        takes one from ``remaining`` in the same transaction when the rule has a count. Returns
        None, changing nothing, when the rule is gone or its count is used up.
        """

    async def clock_offset(self) -> float:
        """The emulator clock's server-wide offset from the wall clock, in seconds (0 when never
        set): the operator's part (``serve --clock-offset``, ``timserver clock set``), under
        every app's own offset."""

    async def set_clock_offset(self, seconds: float) -> None: ...

    async def app_clock_offsets(self) -> dict[int, float]:
        """Each app's own clock offset, in seconds, added to the server-wide one (apps whose
        offset is 0 are left out)."""

    async def app_clock_offset(self, sdkappid: int) -> float:
        """One app's own clock offset, in seconds (0 when never set)."""

    async def set_app_clock_offset(self, sdkappid: int, seconds: float) -> None:
        """Set one app's own clock offset (0 removes it); bumps ``emulator_version``."""

    async def reset_accounts(self, sdkappid: int) -> int:
        """Delete every non-admin account of the app with its kick and devices, and the app's
        deletion bans; returns accounts deleted."""


class PortableStore(Protocol):
    """Portable state (``timserver export`` / ``import``, timserver.portable)."""

    async def list_kicks(self, sdkappid: int, *, after: str = "",
                         limit: int = 1000) -> list[tuple[str, int]]:
        """(UserID, kicked_at) of the app's kicks in UserID order, starting after ``after``."""

    async def restore_accounts(self, sdkappid: int, rows: Sequence[Account]) -> int:
        """Write accounts exactly as given (nick, face_url and created_at replace the stored
        ones; ``is_admin`` is ignored: admins are the app's) in one transaction; returns how
        many were created."""

    async def restore_kicks(self, sdkappid: int, rows: Sequence[tuple[str, int]]) -> None:
        """Set kicks exactly as given, (UserID, kicked_at), in one transaction."""

    async def replace_faults(self, sdkappid: int, rules: Sequence[FaultRecord]) -> None:
        """Make these the app's fault rules (their spec, remaining, matched and created_at; ids
        are new), in one transaction; bumps ``emulator_version``."""


class Storage(Database, AppStore, AccountStore, LoginStore, EmulatorStore, PortableStore,
              Protocol):
    """Everything a backend implements: the union of the roles."""
