"""Apps: SDKAppID, secret key, admins, edition, rate limits (docs/protocol.md §9) and
callbacks (§11.3)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..protocol.commands import BY_NAME, DEFAULT_RATES, MAX_UINT32
from ..storage import App, AppExists, Callback, Storage
from .events import CALLBACK_COMMANDS
from .rules import userid_problem

EDITIONS = ("developer", "trial", "pro")
TRIAL_MAX_ACCOUNTS = 100  # imported accounts of a trial app; admins take no place
MAX_ADMINS = 10
DEFAULT_ADMIN = "administrator"
MAX_RATE = 1_000_000  # calls/s; the limiter keeps up to RATE timestamps per (app, command)
_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS_RE = re.compile(r"[0-9]{1,10}")


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
    if sdkappid is not None and not 1 <= sdkappid <= MAX_UINT32:
        raise AppConfigError(f"SDKAppID must be an integer from 1 to {MAX_UINT32}")
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


MAX_CALLBACK_URL = 2048
MAX_CALLBACK_TOKEN = 256


def make_callback(url: str, token: str | None = None,
                  commands: Sequence[str] = ()) -> Callback:
    """A valid callback configuration (docs/protocol.md §11.3), or ``AppConfigError``."""
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or len(url) > MAX_CALLBACK_URL or any(c.isspace() or ord(c) < 32 for c in url)):
        raise AppConfigError(f"the callback URL must be an http:// or https:// URL of at most "
                             f"{MAX_CALLBACK_URL} characters with a host, not {url[:80]!r}")
    if token is not None and (not token or len(token) > MAX_CALLBACK_TOKEN
                              or not token.isascii() or not token.isprintable()):
        raise AppConfigError(f"the callback token must be 1 to {MAX_CALLBACK_TOKEN} printable "
                             "ASCII characters")
    unknown = [c for c in commands if c not in CALLBACK_COMMANDS]
    if unknown:
        raise AppConfigError(f"unknown callback command {unknown[0]!r}; one of "
                             f"{', '.join(CALLBACK_COMMANDS)}")
    chosen = tuple(dict.fromkeys(commands)) or CALLBACK_COMMANDS
    return Callback(url, token, chosen)


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


async def rotate_key(storage: Storage, sdkappid: int, key: str | None = None) -> App | None:
    """Give an app a new key (None: a random one); its kicks go too. They revoked UserSigs of
    the old key, which no longer verify anyway, and a kick that a moved clock put far ahead
    would otherwise lock an admin out for as long (docs/emulator.md)."""
    check_settings(key=key)
    updated = await storage.update_app(sdkappid, key=key or new_key())
    if updated is not None:
        await storage.unkick(sdkappid)
    return updated


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


# --- declared apps (serve --app, TIMSERVER_APPS) --------------------------------------------------

#: The well-known development app (``serve --dev-app``, on in the container image), so that test
#: suites in any language can hard-code its credentials. Its key is public: never use it for
#: anything reachable by others. The key is the hex of "timserver well-known dev app key".
DEV_SDKAPPID = 1400000000
DEV_KEY = "74696d7365727665722077656c6c2d6b6e6f776e2064657620617070206b6579"


@dataclass(frozen=True, slots=True)
class Declared:
    """An app as ``SDKAPPID:KEY[:ADMIN[,ADMIN...]][:EDITION]`` declares it; what is left out
    (``None``) takes the default on creation and is left as it is on an existing app."""

    sdkappid: int
    key: str
    admins: tuple[str, ...] | None = None
    edition: str | None = None


DEV_APP = Declared(DEV_SDKAPPID, DEV_KEY)


def parse_declared(text: str) -> Declared:
    """``SDKAPPID:KEY[:ADMIN[,ADMIN...]][:EDITION]``; raises AppConfigError saying what is wrong
    (the key is never repeated in the message)."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise AppConfigError(
            f"expected SDKAPPID:KEY[:ADMIN[,ADMIN...]][:EDITION], got {len(parts)} "
            "':'-separated fields (an admin whose UserID holds ':' or ',' is set with "
            "`timserver app set-admins`)")
    sdkappid_text, key = parts[0], parts[1]
    if not _DIGITS_RE.fullmatch(sdkappid_text):
        raise AppConfigError(f"SDKAppID {sdkappid_text!r} is not a number")
    sdkappid = int(sdkappid_text)
    admins = tuple(dict.fromkeys(parts[2].split(","))) if len(parts) > 2 and parts[2] else None
    edition = parts[3] if len(parts) > 3 and parts[3] else None
    try:
        check_settings(sdkappid=sdkappid, key=key, admins=admins, edition=edition)
    except AppConfigError as exc:
        raise AppConfigError(f"app {sdkappid}: {exc}") from None
    return Declared(sdkappid, key, admins, edition)


def check_declared(declared: Sequence[Declared]) -> list[Declared]:
    """The declarations without repeats; two different ones of one SDKAppID are an error."""
    seen: dict[int, Declared] = {}
    for one in declared:
        if seen.setdefault(one.sdkappid, one) != one:
            raise AppConfigError(f"app {one.sdkappid} is declared twice, differently")
    return list(seen.values())


async def declare_app(storage: Storage, declared: Declared) -> tuple[App, str]:
    """Make the app what ``declared`` says: ``(app, "created" | "updated" | "unchanged")``.

    Idempotent: declaring it again changes nothing; another key rotates it.
    """
    found = await storage.get_app(declared.sdkappid)
    if found is None:
        try:
            return await create_app(storage, sdkappid=declared.sdkappid, key=declared.key,
                                    admins=declared.admins or (DEFAULT_ADMIN,),
                                    edition=declared.edition or "developer"), "created"
        except AppExists:  # another instance declared it first: make sure it is as declared
            found = await storage.get_app(declared.sdkappid)
            if found is None:
                raise
    change: dict[str, Any] = {}
    if found.key != declared.key:
        change["key"] = declared.key
    if declared.edition is not None and found.edition != declared.edition:
        change["edition"] = declared.edition
    if declared.admins is not None and found.admins != declared.admins:
        change["admins"] = declared.admins
    if not change:
        return found, "unchanged"
    updated = await storage.update_app(declared.sdkappid, **change)
    if updated is None:  # deleted in between: nothing in timserver deletes apps, but be exact
        raise AppConfigError(f"app {declared.sdkappid} vanished while it was declared")
    if "key" in change:  # a new key is a rotation: its kicks go too (rotate_key)
        await storage.unkick(declared.sdkappid)
    return updated, "updated"
