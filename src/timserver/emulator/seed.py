"""Account files for ``serve --seed FILE`` and ``timserver seed FILE``.

Three shapes, told apart by the file's extension, else by its first line:

* CSV with a header naming the columns: ``UserID,Nick,FaceUrl`` (``.csv``; Nick and FaceUrl
  optional, an empty cell leaves the field unset, unknown columns ignored);
* NDJSON, one object per line: ``{"UserID": "u1", "Nick": "Ann"}`` (``.ndjson``, ``.jsonl``, or a
  first line that starts with ``{``; ``Identifier`` is accepted for ``UserID``);
* one UserID per line (anything else; a UserID is the whole line, spaces included; a first
  line ``UserID`` is a header).

Every account is checked with the rules of a /v4 import (docs/protocol.md §7.7) before anything is
imported; the first bad line stops the seeding with its line number. Empty lines are skipped.
A file may hold at most 1,000,000 accounts (64 MiB).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _lines(text: str) -> list[str]:
    """Lines ending in LF or CRLF only: a UserID may hold other Unicode line separators."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check(user_id: Any, nick: Any, face_url: Any, where: str) -> AccountWrite:
    if not isinstance(user_id, str):
        raise SeedError(f"{where}: UserID must be a string")
    problem = userid_problem(user_id)
    if problem:
        raise SeedError(f"{where}: UserID {user_id!r} is invalid: {problem}")
    for name, value in (("Nick", nick), ("FaceUrl", face_url)):
        if value is not None:
            problem = profile_problem(name, value)
            if problem:
                raise SeedError(f"{where}: {problem}")
    return AccountWrite(user_id, nick, face_url)


def _kind(name: str, text: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".txt":
        return "lines"
    first = next((line for line in _lines(text) if line.strip()), "")
    if first.lstrip().startswith("{"):
        return "ndjson"
    if first.split(",")[0].strip() == "UserID" and "," in first:
        return "csv"
    return "lines"


def parse_seed(data: bytes, name: str = "") -> list[AccountWrite]:
    """The accounts of a seed file's bytes (``name`` gives the extension); raises SeedError."""
    if len(data) > MAX_SEED_BYTES:
        raise SeedError(f"the file is larger than {MAX_SEED_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedError(f"the file is not UTF-8 (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    kind = _kind(name, text)
    accounts: list[AccountWrite] = []
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        try:
            header = reader.fieldnames or []
            if "UserID" not in header:
                raise SeedError("line 1: the CSV header must name a UserID column "
                                "(UserID,Nick,FaceUrl)")
            for row in reader:
                where = f"line {reader.line_num}"
                if not any((value or "").strip() for value in row.values()):
                    continue
                if None in row:
                    raise SeedError(f"{where}: more cells than the header has columns")
                accounts.append(_check(row["UserID"], row.get("Nick") or None,
                                       row.get("FaceUrl") or None, where))
                if len(accounts) > MAX_SEED_ACCOUNTS:
                    break
        except csv.Error as exc:
            raise SeedError(f"line {reader.line_num}: {exc}") from None
    else:
        seen_header = False
        for number, line in enumerate(_lines(text), 1):
            where = f"line {number}"
            if kind == "ndjson":
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    raise SeedError(f"{where}: not a JSON object") from None
                if not isinstance(obj, dict):
                    raise SeedError(f"{where}: not a JSON object")
                user_id = obj.get("UserID", obj.get("Identifier"))
                if user_id is None:
                    raise SeedError(f"{where}: no UserID")
                accounts.append(_check(user_id, obj.get("Nick"), obj.get("FaceUrl"), where))
            elif line == "UserID" and not accounts and not seen_header:
                seen_header = True  # a one-column header
            elif line:
                accounts.append(_check(line, None, None, where))
            if len(accounts) > MAX_SEED_ACCOUNTS:
                break
    if len(accounts) > MAX_SEED_ACCOUNTS:
        raise SeedError(f"more than {MAX_SEED_ACCOUNTS} accounts in one file")
    return accounts


def read_seed(path: str | Path) -> list[AccountWrite]:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_SEED_BYTES:
            raise SeedError(f"{file} is larger than {MAX_SEED_BYTES} bytes")
        data = file.read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return parse_seed(data, file.name)
    except SeedError as exc:
        raise SeedError(f"{file}, {exc}") from None


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
