"""Account lists from files: CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one UserID a line.

The format is told from the first non-blank line: ``{`` starts NDJSON, a CSV header whose first
column is ``UserID`` starts CSV, anything else is one UserID per line (taken as it is, spaces
included; blank lines are skipped). In CSV an empty Nick or FaceUrl cell means "not given".

One reader, ``iter_accounts``, reads a stream a line at a time (memory does not grow with the
input); ``open_accounts`` streams a file, and ``parse_accounts`` / ``read_accounts`` return the
whole list; ``timserver accounts load`` uses it too (``iter_numbered_accounts``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator

import msgspec

from ..protocol import messages as m

Account = m.AccountListItem
PROFILE_FIELDS = ("Nick", "FaceUrl")


class InputError(ValueError):
    """The input cannot be read as accounts; the message names the line."""


#: ``on_bad(line_number, reason, text)``: a line that is not an account, skipped (instead of
#: raising :class:`InputError`); ``text`` is the line as read (without its end of line).
OnBad = Callable[[int, str, str], None]


def read_accounts(path: str | os.PathLike[str]) -> list[Account]:
    with open(path, "rb") as f:
        return list(iter_accounts(f))


def parse_accounts(data: bytes | str) -> list[Account]:
    """The accounts of a whole input held in memory (the same reader as a stream)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(iter_accounts(io.BytesIO(raw)))


_line_decoder = msgspec.json.Decoder(Account)


# --- streaming -----------------------------------------------------------------------------------


class _Lines:
    """The lines of a binary input, decoded, each with its ``\n``; ``number`` is the last one's."""

    def __init__(self, lines: Iterable[bytes], on_bad: OnBad | None = None) -> None:
        self._it = iter(lines)
        self.number = 0
        self.on_bad = on_bad

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while True:
            raw = next(self._it)
            self.number += 1
            if self.number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.bad(f"not UTF-8 ({exc.reason})", raw.decode("utf-8", "replace"))

    def bad(self, reason: str, text: str) -> None:
        """A bad line: raised, or reported and skipped when the reader was given ``on_bad``."""
        if self.on_bad is None:
            raise InputError(f"line {self.number}: {reason}")
        self.on_bad(self.number, reason, _bare(text))


def _bare(line: str) -> str:
    """The line without its ``\n`` or ``\r\n`` (as ``parse_accounts`` splits)."""
    return line.removesuffix("\n").removesuffix("\r")


def iter_accounts(lines: Iterable[bytes], on_bad: OnBad | None = None) -> Iterator[Account]:
    """The accounts of a binary input (an ``open(path, "rb")`` file, ``sys.stdin.buffer``, any
    iterable of byte lines), as it is read, line by line: the rules of the module docstring.

    A bad line raises :class:`InputError` when it is reached (after the accounts before it), or
    with ``on_bad`` is reported to it and skipped (every bad line of the input, in one pass).
    """
    return (account for _, account in iter_numbered_accounts(lines, on_bad))


def iter_numbered_accounts(lines: Iterable[bytes],
                           on_bad: OnBad | None = None) -> Iterator[tuple[int, Account]]:
    """``iter_accounts`` with the number of each account's (last) line, for messages."""
    source = _Lines(lines, on_bad)
    first = next((line for line in source if line.strip()), None)
    if first is None:
        return
    if first.lstrip().startswith("{"):
        yield from _ndjson_stream(first, source)
    elif next(csv.reader([_bare(first)]), [""])[0].strip() == "UserID":
        yield from _csv_stream(first, source)
    else:
        yield source.number, Account(UserID=_bare(first))
        for line in source:
            if line.strip():
                yield source.number, Account(UserID=_bare(line))


def _ndjson_stream(first: str, source: _Lines) -> Iterator[tuple[int, Account]]:
    for line in itertools.chain([first], source):
        if not line.strip():
            continue
        try:
            account = _line_decoder.decode(line)  # unknown keys are ignored
        except msgspec.DecodeError as exc:
            source.bad(str(exc), line)
            continue
        yield source.number, account


def _csv_stream(first: str, source: _Lines) -> Iterator[tuple[int, Account]]:
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
            source.bad("no UserID", line)
            continue
        account = Account(UserID=row[user_id])
        for i, name in profile:
            if i < len(row) and row[i]:
                setattr(account, name, row[i])
        yield source.number, account


@contextlib.contextmanager
def open_accounts(path: str | os.PathLike[str]) -> Iterator[Iterator[Account]]:
    """``with open_accounts(path) as accounts:`` the accounts of a file, streamed."""
    with open(path, "rb") as f:
        yield iter_accounts(f)
