"""Account lists from files: CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one UserID a line.

The format is told from the first non-blank line: ``{`` starts NDJSON, a CSV header whose first
column is ``UserID`` starts CSV, anything else is one UserID per line (taken as it is, spaces
included; blank lines are skipped). In CSV an empty Nick or FaceUrl cell means "not given".
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from typing import Any

import msgspec

from ..protocol import messages as m

Account = m.AccountListItem
PROFILE_FIELDS = ("Nick", "FaceUrl")


class InputError(ValueError):
    """The input cannot be read as accounts; the message names the line."""


def read_accounts(path: str | os.PathLike[str]) -> list[Account]:
    with open(path, "rb") as f:
        return parse_accounts(f.read())


def parse_accounts(data: bytes | str) -> list[Account]:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        return _ndjson(lines)
    if next(csv.reader([first]), [""])[0].strip() == "UserID":
        return _csv(text, lines)
    return [Account(UserID=line) for line in lines if line.strip()]


_line_decoder = msgspec.json.Decoder(Account)


def _ndjson(lines: list[str]) -> list[Account]:
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(_line_decoder.decode(line))  # unknown keys are ignored
        except msgspec.DecodeError as exc:
            raise InputError(f"line {number}: {exc}") from None
    return out


def _csv(text: str, lines: list[str]) -> list[Account]:
    rows: Iterator[tuple[int, list[str]]]
    if '"' in text:
        rows = _numbered(csv.reader(io.StringIO(text, newline="")))
    else:  # no quoting: split the lines here (csv.reader costs about 1 µs a row)
        rows = ((n, line.split(",")) for n, line in enumerate(lines, 1))
    header = [name.strip() for name in next(rows)[1]]
    user_id = header.index("UserID")
    profile = [(i, name) for i, name in enumerate(header) if name in PROFILE_FIELDS]
    out = []
    for number, row in rows:
        if not any(row):
            continue  # a blank line
        if user_id >= len(row) or not row[user_id]:
            raise InputError(f"line {number}: no UserID")
        account = Account(UserID=row[user_id])
        for i, name in profile:
            if i < len(row) and row[i]:
                setattr(account, name, row[i])
        out.append(account)
    return out


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    for row in reader:
        yield reader.line_num, row
