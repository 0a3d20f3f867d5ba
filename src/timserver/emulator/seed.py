"""Account files for ``serve --seed FILE`` and ``timserver seed FILE``.

The file is read by the one reader of account files (``timserver.accountfiles``: CSV with a
``UserID,Nick,FaceUrl`` header, NDJSON, or one UserID a line), so it means the same accounts
here as to ``accounts import``. Seeding writes to the database without a /v4 call, so every
account is then checked with the rules of a /v4 import (docs/protocol.md §7.7) before anything
is imported; the first bad line stops the seeding with its line number. A file may hold at most
1,000,000 accounts (64 MiB).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from msgspec import UNSET

from ..accountfiles import Account, InputError, iter_numbered_accounts
from ..service.apps import max_accounts
from ..service.rules import profile_problem, userid_problem
from ..storage import AccountWrite, Storage

MAX_SEED_BYTES = 64 * 1024 * 1024
MAX_SEED_ACCOUNTS = 1_000_000
_BATCH = 500


class SeedError(ValueError):
    """A seed file that cannot be imported; the message names the line and the problem."""


@dataclass(frozen=True)
class SeedResult:
    accounts: int  # accounts in the file
    imported: int  # created or updated
    refused: list[str]  # new accounts refused by the app's cap (trial edition)


def _check(number: int, account: Account) -> AccountWrite:
    where = f"line {number}"
    problem = userid_problem(account.UserID)
    if problem:
        raise SeedError(f"{where}: UserID {account.UserID!r} is invalid: {problem}")
    for name in ("Nick", "FaceUrl"):
        problem = profile_problem(name, getattr(account, name))
        if problem:
            raise SeedError(f"{where}: {problem}")
    return AccountWrite(account.UserID, None if account.Nick is UNSET else account.Nick,
                        None if account.FaceUrl is UNSET else account.FaceUrl)


def _read(lines: Iterable[bytes], name: str) -> list[AccountWrite]:
    accounts: list[AccountWrite] = []
    try:
        for number, account in iter_numbered_accounts(lines, name=name or None):
            accounts.append(_check(number, account))
            if len(accounts) > MAX_SEED_ACCOUNTS:
                raise SeedError(f"more than {MAX_SEED_ACCOUNTS} accounts in one file")
    except InputError as exc:
        raise SeedError(str(exc)) from None
    return accounts


def parse_seed(data: bytes, name: str = "") -> list[AccountWrite]:
    """The accounts of a seed file's bytes (``name`` gives the extension); raises SeedError."""
    if len(data) > MAX_SEED_BYTES:
        raise SeedError(f"the file is larger than {MAX_SEED_BYTES} bytes")
    return _read(io.BytesIO(data), name)


def read_seed(path: str | Path) -> list[AccountWrite]:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_SEED_BYTES:
            raise SeedError(f"{file} is larger than {MAX_SEED_BYTES} bytes")
        with file.open("rb") as f:
            try:
                return _read(f, file.name)
            except SeedError as exc:
                raise SeedError(f"{file}, {exc}") from None
    except OSError as exc:
        raise SeedError(f"cannot read {file}: {exc.strerror or exc}") from None


async def seed_app(storage: Storage, sdkappid: int, accounts: list[AccountWrite]) -> SeedResult:
    """Import the accounts into the app, in batches (each one transaction), in file order."""
    app = await storage.get_app(sdkappid)
    if app is None:
        raise SeedError(f"no app with SDKAppID {sdkappid}")
    cap = max_accounts(app)
    imported, refused = 0, []
    for start in range(0, len(accounts), _BATCH):
        batch = accounts[start:start + _BATCH]
        applied = await storage.import_accounts(sdkappid, batch, cap)
        for write, ok in zip(batch, applied, strict=True):
            if ok:
                imported += 1
            else:
                refused.append(write.user_id)
    return SeedResult(len(accounts), imported, refused)
