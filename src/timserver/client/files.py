"""Account lists from files: CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one UserID a line.

The format is told from the first non-blank line: ``{`` starts NDJSON, a CSV header whose first
column is ``UserID`` starts CSV, anything else is one UserID per line (taken as it is, spaces
included; blank lines are skipped). In CSV an empty Nick or FaceUrl cell means "not given".

``parse_accounts`` / ``read_accounts`` read a whole input; ``iter_accounts`` / ``open_accounts``
read the same formats as a stream, a line at a time (memory does not grow with the input).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
from collections.abc import Iterable, Iterator
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
    if (next(csv.reader([first]), None) or [""])[0].strip() == "UserID":
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


# --- streaming -----------------------------------------------------------------------------------


class _Lines:
    """The lines of a binary input, decoded, each with its ``\n``; ``number`` is the last one's."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._it = iter(lines)
        self.number = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._it)
        self.number += 1
        if self.number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"line {self.number}: not UTF-8 ({exc.reason})") from None


def _bare(line: str) -> str:
    """The line without its ``\n`` or ``\r\n`` (as ``parse_accounts`` splits)."""
    return line.removesuffix("\n").removesuffix("\r")


def iter_accounts(lines: Iterable[bytes]) -> Iterator[Account]:
    """The accounts of a binary input (an ``open(path, "rb")`` file, ``sys.stdin.buffer``, any
    iterable of byte lines), as it is read: the rules of :func:`parse_accounts`, line by line.

    A bad line raises :class:`InputError` when it is reached (after the accounts before it).
    """
    source = _Lines(lines)
    first = next((line for line in source if line.strip()), None)
    if first is None:
        return
    if first.lstrip().startswith("{"):
        yield from _ndjson_stream(first, source)
    elif next(csv.reader([_bare(first)]), [""])[0].strip() == "UserID":
        yield from _csv_stream(first, source)
    else:
        yield Account(UserID=_bare(first))
        for line in source:
            if line.strip():
                yield Account(UserID=_bare(line))


def _ndjson_stream(first: str, source: _Lines) -> Iterator[Account]:
    for line in itertools.chain([first], source):
        if not line.strip():
            continue
        try:
            yield _line_decoder.decode(line)  # unknown keys are ignored
        except msgspec.DecodeError as exc:
            raise InputError(f"line {source.number}: {exc}") from None


def _csv_stream(first: str, source: _Lines) -> Iterator[Account]:
    header = [name.strip() for name in next(csv.reader([_bare(first)]))]
    user_id = header.index("UserID")
    profile = [(i, name) for i, name in enumerate(header) if name in PROFILE_FIELDS]
    for line in source:
        if '"' in line:  # quoted: the csv module reads the record, over several lines if need be
            row = next(csv.reader(itertools.chain([line], source)), [])
        else:  # no quoting: split here (csv.reader costs about 1 µs a row)
            row = _bare(line).split(",")
        if not any(row):
            continue  # a blank line
        if user_id >= len(row) or not row[user_id]:
            raise InputError(f"line {source.number}: no UserID")
        account = Account(UserID=row[user_id])
        for i, name in profile:
            if i < len(row) and row[i]:
                setattr(account, name, row[i])
        yield account


@contextlib.contextmanager
def open_accounts(path: str | os.PathLike[str]) -> Iterator[Iterator[Account]]:
    """``with open_accounts(path) as accounts:`` the accounts of a file, streamed."""
    with open(path, "rb") as f:
        yield iter_accounts(f)
