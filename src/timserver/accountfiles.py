"""Account files, the one reader of them: CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one
UserID a line. ``serve --seed``, ``timserver seed``, ``accounts import|check|delete`` and
``accounts load`` all read through it, so a file means the same accounts to every command.
(``timserver export|import`` of a whole state is another format: ``portable.py``.)

The format is told by the file's name when it is given, else from the first non-blank line:

* ``.ndjson`` / ``.jsonl``, or a first line that starts with ``{``: NDJSON, one object a line,
  ``{"UserID": "u1", "Nick": "Ann"}`` (``Identifier`` is accepted for ``UserID``; other keys
  are ignored);
* a CSV header whose first column is ``UserID`` (or, in a ``.csv`` file, a header naming a
  ``UserID`` column anywhere): CSV; an empty Nick or FaceUrl cell means "not given", unknown
  columns and extra cells are ignored;
* anything else: one UserID a line (taken as it is, spaces included).

Blank lines are skipped. The reader streams (memory does not grow with the input); a bad line
raises :class:`InputError` naming it, or with ``on_bad`` is reported and skipped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

import msgspec

from .protocol import messages as m

Account = m.AccountListItem
PROFILE_FIELDS = ("Nick", "FaceUrl")
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
CSV_HEADER = "UserID,Nick,FaceUrl"


class InputError(ValueError):
    """The input cannot be read as accounts; the message names the line."""


#: ``on_bad(line_number, reason, text)``: a line that is not an account, skipped (instead of
#: raising :class:`InputError`); ``text`` is the line as read (without its end of line).
OnBad = Callable[[int, str, str], None]
Name = str | os.PathLike[str] | None


def read_accounts(path: str | os.PathLike[str]) -> list[Account]:
    with open(path, "rb") as f:
        return list(iter_accounts(f, name=path))


def parse_accounts(data: bytes | str, name: Name = None) -> list[Account]:
    """The accounts of a whole input held in memory (the same reader as a stream)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(iter_accounts(io.BytesIO(raw), name=name))


class _Line(msgspec.Struct):
    """An NDJSON line as it may come: ``Identifier`` is the old name of ``UserID``."""

    UserID: str | msgspec.UnsetType = msgspec.UNSET
    Identifier: Any = msgspec.UNSET  # read only without a UserID: then it must be a string
    Nick: str | msgspec.UnsetType = msgspec.UNSET
    FaceUrl: str | msgspec.UnsetType = msgspec.UNSET


_line_decoder = msgspec.json.Decoder(_Line)


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


def iter_accounts(lines: Iterable[bytes], on_bad: OnBad | None = None,
                  name: Name = None) -> Iterator[Account]:
    """The accounts of a binary input (an ``open(path, "rb")`` file, ``sys.stdin.buffer``, any
    iterable of byte lines), as it is read, line by line: the rules of the module docstring
    (``name``, the file's path or name, tells the format by its extension).

    A bad line raises :class:`InputError` when it is reached (after the accounts before it), or
    with ``on_bad`` is reported to it and skipped (every bad line of the input, in one pass).
    A ``.csv`` file whose header names no UserID column raises whatever ``on_bad`` is: no line
    of it can be read.
    """
    return map(itemgetter(1), iter_numbered_accounts(lines, on_bad, name))


def iter_numbered_accounts(lines: Iterable[bytes], on_bad: OnBad | None = None,
                           name: Name = None) -> Iterator[tuple[int, Account]]:
    """``iter_accounts`` with the number of each account's (last) line, for messages."""
    source = _Lines(lines, on_bad)
    first = next((line for line in source if line.strip()), None)
    if first is None:
        return
    suffix = os.path.splitext(os.fspath(name))[1].lower() if name is not None else ""
    header = [cell.strip() for cell in next(csv.reader([_bare(first)]), [""])]
    if suffix in NDJSON_SUFFIXES or (suffix != ".csv" and first.lstrip().startswith("{")):
        yield from _ndjson_stream(first, source)
    elif header[0] == "UserID" or (suffix == ".csv" and "UserID" in header):
        yield from _csv_stream(header, source)
    elif suffix == ".csv" and len(header) > 1:  # a header, without the column that matters
        raise InputError(f"line {source.number}: the CSV header must name a UserID column "
                         f"({CSV_HEADER})")
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
            obj = _line_decoder.decode(line)  # unknown keys are ignored
        except msgspec.DecodeError:
            source.bad(_ndjson_problem(line), line)
            continue
        user_id = obj.UserID if obj.UserID is not msgspec.UNSET else obj.Identifier
        if type(user_id) is not str:
            source.bad("no UserID" if user_id is msgspec.UNSET else "UserID must be a string",
                       line)
            continue
        yield source.number, Account(UserID=user_id, Nick=obj.Nick, FaceUrl=obj.FaceUrl)


def _ndjson_problem(line: str) -> str:
    """Why an NDJSON line is not an account, in words (the typed decoder's fast path failed)."""
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        return f"not a JSON object ({exc})"
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key in ("UserID", *PROFILE_FIELDS):
        if key in obj and not isinstance(obj[key], str):
            return f"{key} must be a string"
    return "not an account"  # not reached: the typed decoder fails on one of the above


def _csv_stream(header: list[str], source: _Lines) -> Iterator[tuple[int, Account]]:
    user_id = header.index("UserID")
    profile = [(i, name) for i, name in enumerate(header) if name in PROFILE_FIELDS]
    # The usual header, UserID,Nick,FaceUrl: each account made in one call (the loop below costs
    # a third of reading a file).
    usual = header[:3] == ["UserID", "Nick", "FaceUrl"] and len(profile) == 2
    for line in source:
        if '"' in line:  # quoted: the csv module reads the record, over several lines if need be
            row = next(csv.reader(itertools.chain([line], source)), [])
        else:  # no quoting: split here (csv.reader costs about 1 µs a row)
            row = _bare(line).split(",")
        if usual and len(row) >= 3:
            if not row[0]:
                if any(row):
                    source.bad("no UserID", line)
                continue  # a blank line (commas only), or one without a UserID
            yield source.number, Account(UserID=row[0], Nick=row[1] or msgspec.UNSET,
                                         FaceUrl=row[2] or msgspec.UNSET)
            continue
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
        yield iter_accounts(f, name=path)
