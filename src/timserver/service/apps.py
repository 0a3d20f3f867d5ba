"""Apps: SDKAppID, secret key, admins, edition and rate limits (docs/protocol.md §9)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence

from ..protocol.commands import BY_NAME, DEFAULT_RATES
from ..storage import App, Storage
from .rules import userid_problem

EDITIONS = ("developer", "trial", "pro")
TRIAL_MAX_ACCOUNTS = 100  # imported accounts of a trial app; admins take no place
MAX_ADMINS = 10
DEFAULT_ADMIN = "administrator"
MAX_RATE = 1_000_000  # calls/s; the limiter keeps up to RATE timestamps per (app, command)
_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")


class AppConfigError(ValueError):
    """An app setting that cannot be accepted; the message says why."""


def max_accounts(app: App) -> int | None:
    return TRIAL_MAX_ACCOUNTS if app.edition == "trial" else None


def rate_for(app: App, command: str) -> int:
    """Calls per second allowed for ``command`` (0 = unlimited)."""
    return app.limits.get(command, DEFAULT_RATES[command])


def new_key() -> str:
    """A secret key shaped like Tencent's: 64 hex characters (used as raw UTF-8 bytes)."""
    return secrets.token_hex(32)


def new_sdkappid() -> int:
    return 1400000000 + secrets.randbelow(100_000_000)


def check_settings(*, sdkappid: int | None = None, key: str | None = None,
                   admins: Sequence[str] | None = None, edition: str | None = None) -> None:
    if sdkappid is not None and not 1 <= sdkappid <= 4294967295:
        raise AppConfigError("SDKAppID must be an integer from 1 to 4294967295")
    if key is not None and not _KEY_RE.fullmatch(key):
        raise AppConfigError("the key must be 64 hex characters, as Tencent's secret keys are")
    if admins is not None:
        if not 1 <= len(admins) <= MAX_ADMINS:
            raise AppConfigError(f"an app has 1 to {MAX_ADMINS} admins")
        for admin in admins:
            problem = userid_problem(admin)
            if problem:
                raise AppConfigError(f"admin {admin!r} is not a valid UserID: {problem}")
    if edition is not None and edition not in EDITIONS:
        raise AppConfigError(f"edition must be one of {', '.join(EDITIONS)}")


def check_limit(command: str, rate: int) -> None:
    if command not in BY_NAME:
        raise AppConfigError(f"unknown command {command!r}; one of {', '.join(BY_NAME)}")
    if not 0 <= rate <= MAX_RATE:
        raise AppConfigError(f"the rate must be 0 (unlimited) to {MAX_RATE} calls per second")


async def create_app(storage: Storage, *, sdkappid: int | None = None, key: str | None = None,
                     admins: Sequence[str] = (DEFAULT_ADMIN,),
                     edition: str = "developer") -> App:
    admins = tuple(dict.fromkeys(admins))
    check_settings(sdkappid=sdkappid, key=key, admins=admins, edition=edition)
    app = App(sdkappid=sdkappid or new_sdkappid(), key=key or new_key(), edition=edition,
              admins=admins, created_at=time.time())
    await storage.create_app(app)
    return app


class AppDirectory:
    """Apps by SDKAppID, cached for as long as no app changes anywhere.

    Every lookup asks storage for the apps' version (one tiny read); any change to any app,
    made by this process or another one (the CLI, another instance), empties the cache.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._version: int | None = None
        self._apps: dict[int, App | None] = {}

    async def get(self, sdkappid: int) -> App | None:
        version = await self._storage.apps_version()
        if version != self._version:
            self._apps.clear()
            self._version = version
        try:
            return self._apps[sdkappid]
        except KeyError:
            app = self._apps[sdkappid] = await self._storage.get_app(sdkappid)
            if len(self._apps) > 10_000:  # unknown SDKAppIDs must not grow it without bound
                self._apps.clear()
            return app
