"""Request verification: what was called, asked the way WireMock's request journal is asked
(docs/emulator.md, "Request verification"). Through a real server, via ``timserver.testing``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from timserver.server.journal import MAX_RECORDED_BODY, Journal
from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow  # servers in child processes


def test_calls_by_command_and_by_userid(tim_server: TimServer) -> None:
    assert tim_server.calls() == []  # the fixture starts every test with none
    tim_server.call("account_import", {"UserID": "alice"})
    started = time.time()
    tim_server.call("account_check", {"CheckItem": [{"UserID": "alice"}, {"UserID": "bob"}]})
    tim_server.call("account_delete", {"DeleteItem": [{"UserID": "bob"}]})
    tim_server.call("kick", {"UserID": "nobody"})  # 70107
    checks = tim_server.calls(command="account_check")
    assert len(checks) == 1
    (check,) = checks
    assert check["UserIDs"] == ["alice", "bob"] and check["ErrorCode"] == 0
    assert json.loads(check["RequestBody"]) == {"CheckItem": [{"UserID": "alice"},
                                                              {"UserID": "bob"}]}
    answer = json.loads(check["ResponseBody"])
    assert [i["AccountStatus"] for i in answer["ResultItem"]] == ["Imported", "NotImported"]
    assert [c["Command"] for c in tim_server.calls(user_id="bob")] == ["account_check",
                                                                     "account_delete"]
    assert tim_server.count_calls(user_id="alice") == 2
    assert tim_server.count_calls(code=70107) == 1
    assert tim_server.count_calls(since=started) == 3
    assert tim_server.count_calls(until=started) == 1
    assert tim_server.count_calls() == 4


def test_no_usersig_is_ever_recorded(tim_server: TimServer) -> None:
    sig = tim_server.usersig()
    tim_server.call("account_check", {"CheckItem": [{"UserID": "x"}]}, usersig=sig)
    raw = httpx.get(f"{tim_server.base_url}/_timserver/calls",
                    params=tim_server._control_query()).text
    assert sig not in raw and "usersig" not in raw.lower() and tim_server.key not in raw


def test_clear_and_isolation_between_apps(tim_server: TimServer) -> None:
    tim_server.call("account_check", {"CheckItem": [{"UserID": "x"}]})
    other = json.loads(tim_server.cli("app", "create", "--json").stdout)
    peer = TimServer.__new__(TimServer)  # the same server, as the other app's admin
    peer.__dict__.update(tim_server.__dict__)
    peer.sdkappid, peer.key = other["sdkappid"], other["key"]
    assert peer.calls() == []  # another app never sees this app's calls
    peer.call("account_check", {"CheckItem": [{"UserID": "y"}]})
    assert tim_server.clear_calls() == 1
    assert tim_server.calls() == [] and len(peer.calls()) == 1


def test_bad_filters_are_70402(tim_server: TimServer) -> None:
    for params in ({"command": "nope"}, {"code": "x"}, {"since": "nan"}, {"limit": "0"},
                   {"user_id": "u" * 33}):
        answer = httpx.get(f"{tim_server.base_url}/_timserver/calls",
                           params={**tim_server._control_query(), **params}).json()
        assert answer["ErrorCode"] == 70402, (params, answer)


def test_without_record_bodies_no_bodies_and_no_userid_filter(tmp_path: Path) -> None:
    with start_server(folder=tmp_path) as server:
        server.call("account_check", {"CheckItem": [{"UserID": "x"}]})
        (entry,) = server.calls()
        assert "RequestBody" not in entry and "UserIDs" not in entry
        answer = httpx.get(f"{server.base_url}/_timserver/calls",
                           params={**server._control_query(), "user_id": "x"}).json()
        assert answer["ErrorCode"] == 70402 and "--record-bodies" in answer["ErrorInfo"]


def test_record_bodies_is_an_emulator_power(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "timserver", "serve", "--db",
                           f"sqlite:///{tmp_path / 'x.db'}", "--no-emulator", "--record-bodies"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--record-bodies is an emulator power" in done.stderr


def test_recorded_bodies_are_cut() -> None:
    journal = Journal(3, record_bodies=True)
    big = b"x" * (MAX_RECORDED_BODY * 3)
    for n in range(5):
        journal.record("POST", "/v4/a/b", "account_check", 1, "admin", 0, 1.0, len(big), 10,
                       now=float(n), bodies=(big, b"{}", ["u"]))
    entries = journal.entries()
    assert len(entries) == 3
    assert all(len(e.RequestBody) == MAX_RECORDED_BODY for e in entries)  # type: ignore[arg-type]
    off = Journal(3)
    off.record("POST", "/v4/a/b", "account_check", 1, "admin", 0, 1.0, 3, 10,
               bodies=(b"abc", b"{}", ["u"]))
    assert "RequestBody" not in json.loads(off.ndjson(off.entries()))  # not kept when off
