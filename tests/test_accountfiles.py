"""One reader of account files (issue 16, item 2): ``serve --seed`` and ``accounts
import|check|delete|load`` read a file the same way, and every file either of them accepted before
is accepted by both. Over real HTTP: tests/e2e/test_account_files.py."""

from __future__ import annotations

import io

import pytest
from msgspec import UNSET

from timserver.accountfiles import InputError, iter_numbered_accounts, parse_accounts
from timserver.cli.load import read_rows
from timserver.emulator.seed import SeedError, parse_seed
from timserver.storage import AccountWrite

# (file name, bytes, the accounts as (UserID, Nick, FaceUrl)); the comment says who read it before.
FILES = [
    ("a.csv", b"\xef\xbb\xbfUserID,Nick,FaceUrl\r\namy,Amy,\r\n\"c,d\",\"C D\",\r\n",
     [("amy", "Amy", None), ("c,d", "C D", None)]),  # both
    ("a.csv", b"FaceUrl,UserID,Extra\nhttp://f,amy,z\n", [("amy", None, "http://f")]),  # seed
    ("a", b"UserID,Nick\r\namy,Amy\r\n\r\n", [("amy", "Amy", None)]),  # both
    ("a", b'{"UserID":"amy","Nick":"Amy","Other":1}\n{"Identifier":"bob"}\n',
     [("amy", "Amy", None), ("bob", None, None)]),  # seed (Identifier)
    ("a", b'{"UserID":"amy","Identifier":5}\n', [("amy", None, None)]),  # both
    ("a.jsonl", b'{"UserID":"amy"}', [("amy", None, None)]),  # both
    ("a.ndjson", b'\n\n{"UserID":"amy","FaceUrl":"u"}\n', [("amy", None, "u")]),  # both
    ("a.txt", b"UserID\namy\r\n bob \n", [("amy", None, None), (" bob ", None, None)]),  # both
    ("a.txt", "x\u2028y\n".encode(), [("x\u2028y", None, None)]),  # both
    ("users", b"amy\nbob smith\n\n", [("amy", None, None), ("bob smith", None, None)]),  # both
    ("a.csv", b"UserID,Nick\namy,Amy,extra\n", [("amy", "Amy", None)]),  # import (extra cells)
    ("a.csv", b"Nick\nAmy\n", [("Nick", None, None), ("Amy", None, None)]),  # import (no header)
    ("a.txt", b"", []),
]


def _reader(name: str, data: bytes) -> list[tuple[str, str | None, str | None]]:
    return [(a.UserID, None if a.Nick is UNSET else a.Nick,
             None if a.FaceUrl is UNSET else a.FaceUrl) for a in parse_accounts(data, name)]


@pytest.mark.parametrize(("name", "data", "expected"), FILES)
def test_seed_and_the_bulk_commands_read_a_file_alike(name: str, data: bytes,
                                                      expected: list[tuple[str, ...]]) -> None:
    assert _reader(name, data) == expected  # accounts import|check|delete
    assert parse_seed(data, name) == [AccountWrite(*row) for row in expected]  # serve --seed
    assert [(a.UserID, a.Nick, a.FaceUrl) for _, a in read_rows(io.BytesIO(data), name)] == [
        (uid, UNSET if nick is None else nick, UNSET if face is None else face)
        for uid, nick, face in expected]  # accounts load


@pytest.mark.parametrize(("name", "data", "says"), [
    ("a.csv", b"UserID,Nick\namy,Amy\n,Nobody\n", "line 3: no UserID"),
    ("a.ndjson", b'{"UserID": 5}\n', "line 1: UserID must be a string"),
    ("a", b'{"Identifier": 5}\n', "line 1: UserID must be a string"),
    ("a.ndjson", b'{"Nick": "x"}\n', "line 1: no UserID"),
    ("a.ndjson", b'{"UserID": "a"}\n[1]\n', "line 2: not a JSON object"),
    ("a.ndjson", b'{"UserID": "a"}\n{"UserID": \n', "line 2: not a JSON object"),
    ("a.ndjson", b'{"UserID": "a", "Nick": 5}\n', "line 1: Nick must be a string"),
    ("a.csv", b"Nick,FaceUrl\nAmy,x\n", "line 1: the CSV header must name a UserID column"),
    ("a.txt", b"ok\n\xff\xfe\n", "line 2: not UTF-8"),
    ("a.txt", b"\xff\xfe", "line 1: not UTF-8"),
])
def test_a_bad_line_is_named_alike_by_both(name: str, data: bytes, says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_accounts(data, name)
    with pytest.raises(SeedError, match=says):
        parse_seed(data, name)


@pytest.mark.parametrize(("name", "data", "says"), [
    ("a.csv", b"UserID\n" + b"x" * 33 + b"\n", "line 2: UserID 'x+' is invalid: it is 33 bytes"),
    ("a.csv", b'UserID,Nick\namy,"' + b"n" * 501 + b'"\n', "line 2: Nick is 501 bytes"),
    ("a.txt", b"ok\nbad\x01id\n", "line 2: UserID 'bad.x01id' is invalid: it contains a control"),
])
def test_seed_checks_each_account_with_the_rules_of_an_import(name: str, data: bytes,
                                                              says: str) -> None:
    """Seeding writes without a /v4 call, so it checks what the server would (the bulk commands
    send these lines, and the server answers for each)."""
    assert parse_accounts(data, name)
    with pytest.raises(SeedError, match=says):
        parse_seed(data, name)


def test_every_bad_line_is_reported_with_its_number_and_the_others_read() -> None:
    bad: list[tuple[int, str, str]] = []
    data = b'{"UserID":"a"}\n{"Nick":"x"}\r\n{"UserID":"b"}\n[1]\n'
    got = [(n, a.UserID) for n, a in iter_numbered_accounts(
        io.BytesIO(data), lambda *line: bad.append(line))]
    assert got == [(1, "a"), (3, "b")]
    assert bad == [(2, "no UserID", '{"Nick":"x"}'), (4, "not a JSON object", "[1]")]


def test_the_name_decides_before_the_first_line() -> None:
    data = b'{"UserID":"a"}\n'
    assert [a.UserID for a in parse_accounts(data, "x.ndjson")] == ["a"]
    assert [a.UserID for a in parse_accounts(data, "x.csv")] == ['{"UserID":"a"}']  # a UserID
    with pytest.raises(InputError, match="line 1: not a JSON object"):
        parse_accounts(b"amy\n", "x.jsonl")
