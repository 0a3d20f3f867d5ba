"""Reset, seed and snapshots, round trips through a running server over real HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow


def status(server: TimServer, *users: str, sig: str | None = None) -> list[str]:
    query = {"usersig": sig} if sig else {}
    answer = server.call("account_check", {"CheckItem": [{"UserID": u} for u in users]}, **query)
    assert answer["ErrorCode"] == 0, answer
    return [item["AccountStatus"] for item in answer["ResultItem"]]


def rows(server: TimServer) -> dict[str, tuple[Any, Any]]:
    """Non-admin accounts of the server's app, read from its database file."""
    path = server.db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return {uid: (nick, face) for uid, nick, face in conn.execute(
            "SELECT user_id, nick, face_url FROM accounts WHERE sdkappid = ? AND is_admin = 0",
            (server.sdkappid,))}


# --- reset -----------------------------------------------------------------------------------------


def test_reset_empties_accounts_rules_and_clock_and_keeps_admins_kicks(
        tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob"]})
    old_sig = tim_server.usersig()
    assert tim_server.call("kick", {"UserID": "administrator"})["ErrorCode"] == 0
    assert tim_server.call("account_check", {"CheckItem": [{"UserID": "amy"}]},
                           usersig=old_sig)["ErrorCode"] == 70005
    tim_server.add_fault(command="kick", code=70500)
    tim_server.set_clock(5)
    done = tim_server.reset()
    assert done["DeletedAccounts"] == 2 and done["DeletedRules"] == 1
    new_sig = tim_server.usersig(now=int(time.time()) + 2)  # signed after the kick
    assert status(tim_server, "amy", "bob", "administrator",
                  sig=new_sig) == ["NotImported", "NotImported", "Imported"]
    assert tim_server.call("account_check", {"CheckItem": [{"UserID": "amy"}]},
                           usersig=old_sig)["ErrorCode"] == 70005  # the admin's kick stayed
    assert tim_server.faults() == []
    assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 0


def test_reset_keeps_rules_and_clock_unless_asked(tim_server: TimServer) -> None:
    tim_server.call("account_import", {"UserID": "amy"})
    tim_server.add_fault(command="kick", code=70500)
    tim_server.set_clock(7)
    done = tim_server.control("POST", "/_timserver/reset", {})
    assert done == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "DeletedAccounts": 1}
    assert len(tim_server.faults()) == 1
    assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 7


def test_reset_empties_the_rate_limit_windows(tim_server: TimServer) -> None:
    tim_server.cli("app", "set-limit", str(tim_server.sdkappid), "kick", "2")
    try:
        tim_server.call("account_import", {"UserID": "amy"})
        codes = [tim_server.call("kick", {"UserID": "amy"})["ErrorCode"] for _ in range(3)]
        assert codes == [0, 0, 60007]
        tim_server.reset()
        tim_server.call("account_import", {"UserID": "amy"})
        assert tim_server.call("kick", {"UserID": "amy"})["ErrorCode"] == 0
    finally:
        tim_server.cli("app", "set-limit", str(tim_server.sdkappid), "kick", "200")


def test_cli_reset_reaches_the_running_server(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob", "cat"]})
    tim_server.add_fault(command="kick", code=70500)
    out = tim_server.cli("reset", "--sdkappid", str(tim_server.sdkappid), "--faults").stdout
    assert "deleted 3 accounts and 1 fault rules" in out
    assert status(tim_server, "amy", "administrator") == ["NotImported", "Imported"]
    assert tim_server.faults() == []
    missing = tim_server.cli("reset", "--sdkappid", "1", check=False)
    assert missing.returncode != 0 and "no app" in missing.stderr


def test_reset_touches_only_its_app(tim_server: TimServer, second_app: dict[str, Any]) -> None:
    other = second_app["sdkappid"]
    tim_server.cli("seed", "--sdkappid", str(other), _write(tim_server.folder / "o.txt", "ozzy\n"))
    tim_server.call("account_import", {"UserID": "amy"})
    tim_server.reset()
    with sqlite3.connect(tim_server.db.removeprefix("sqlite:///")) as conn:
        (count,) = conn.execute("SELECT count(*) FROM accounts WHERE sdkappid = ? AND "
                                "user_id = 'ozzy'", (other,)).fetchone()
    assert count == 1


# --- seed ------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> str:
    path.write_text(text, "utf-8")
    return str(path)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("accounts.csv", "UserID,Nick,FaceUrl\r\namy,Amy,http://a/1.png\r\nbob,,\r\n\"c,d\",\"C D\",\r\n",
     {"amy": ("Amy", "http://a/1.png"), "bob": (None, None), "c,d": ("C D", None)}),
    ("accounts.ndjson", '{"UserID": "amy", "Nick": "Amy"}\n\n{"Identifier": "bob"}\n',
     {"amy": ("Amy", None), "bob": (None, None)}),
    ("users", "amy\nbob smith\n\ncécile\n", {"amy": (None, None), "bob smith": (None, None),
                                             "cécile": (None, None)}),
])
def test_serve_seed_imports_accounts_at_start(tmp_path: Path, name: str, text: str,
                                              expected: dict[str, tuple[Any, Any]]) -> None:
    seed = _write(tmp_path / name, text)
    with start_server(args=["--seed", seed], folder=tmp_path / "server") as server:
        assert rows(server) == expected
        assert status(server, *expected) == ["Imported"] * len(expected)
        assert "Seeded app" in server.logs()
        # Seeding again (a restart with the same file) changes nothing.
        server.restart()
        assert rows(server) == expected


def test_serve_refuses_a_bad_seed_file_before_listening(tmp_path: Path) -> None:
    seed = _write(tmp_path / "bad.csv", "UserID,Nick\namy,Amy\n,Nobody\n")
    done = subprocess.run(
        [sys.executable, "-m", "timserver", "serve", "--port", "1", "--db",
         f"sqlite:///{tmp_path / 'x.db'}", "--seed", seed],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "line 3" in done.stderr and "UserID" in done.stderr


def test_seed_into_a_trial_app_reports_the_cap(tmp_path: Path) -> None:
    seed = _write(tmp_path / "many.txt", "".join(f"user{i}\n" for i in range(103)))
    with start_server(edition="trial", folder=tmp_path / "server") as server:
        out = server.cli("seed", seed, "--sdkappid", str(server.sdkappid)).stdout
        assert "100 of 103 accounts imported; 3 refused" in out
        assert status(server, "user99", "user100") == ["Imported", "NotImported"]


# --- snapshots -------------------------------------------------------------------------------------


def test_snapshot_round_trip_while_the_server_runs(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob"]})
    name = f"before-{time.monotonic_ns()}"
    saved = tim_server.cli("snapshot", "save", name).stdout
    assert f"Saved snapshot '{name}'" in saved
    tim_server.call("account_delete", {"DeleteItem": [{"UserID": "amy"}]})
    tim_server.call("account_import", {"UserID": "cat"})
    tim_server.add_fault(command="kick", code=70500)
    assert status(tim_server, "amy", "bob", "cat") == ["NotImported", "Imported", "Imported"]
    tim_server.cli("snapshot", "restore", name)
    assert status(tim_server, "amy", "bob", "cat") == ["Imported", "Imported", "NotImported"]
    assert len(tim_server.faults()) == 1  # rules are controls, not data: they stay
    listed = tim_server.cli("snapshot", "list").stdout
    assert name in listed
    tim_server.cli("snapshot", "delete", name)
    assert name not in tim_server.cli("snapshot", "list").stdout


def test_restore_brings_back_app_records_through_the_cache(tim_server: TimServer) -> None:
    name = f"key-{time.monotonic_ns()}"
    tim_server.cli("snapshot", "save", name)
    old_sig = tim_server.usersig()
    out = tim_server.cli("app", "rotate-key", str(tim_server.sdkappid)).stdout
    new_key = out.split("Key:")[1].split()[0]
    assert tim_server.call("account_check", {"CheckItem": [{"UserID": "a"}]},
                           usersig=old_sig)["ErrorCode"] == 70009  # the server saw the new key
    tim_server.cli("snapshot", "restore", name)
    assert tim_server.call("account_check", {"CheckItem": [{"UserID": "a"}]},
                           usersig=old_sig)["ErrorCode"] == 0  # and now the restored one
    assert new_key != tim_server.key


def test_snapshot_errors(tim_server: TimServer) -> None:
    name = f"dup-{time.monotonic_ns()}"
    tim_server.cli("snapshot", "save", name)
    again = tim_server.cli("snapshot", "save", name, check=False)
    assert again.returncode != 0 and "--force" in again.stderr
    tim_server.cli("snapshot", "save", name, "--force")
    for args, says in [(["save", "../escape"], "bad snapshot name"),
                       (["save", ".hidden"], "bad snapshot name"),
                       (["restore", "never-saved"], "no snapshot"),
                       (["delete", "never-saved"], "no snapshot")]:
        done = tim_server.cli("snapshot", *args, check=False)
        assert done.returncode != 0 and says in done.stderr, done.stderr
    files = sorted(p.name for p in (tim_server.folder / "timserver.db.snapshots").iterdir())
    assert f"{name}.db" in files and not [f for f in files if f.endswith(".tmp")]
    tim_server.cli("snapshot", "delete", name)


def test_serve_faults_file(tmp_path: Path) -> None:
    with start_server(folder=tmp_path / "first") as first:
        first.add_fault(command="account_check", code=70202, times=1, seed=3)
        first.add_fault(command="kick", latency_ms=10, probability=0.5, seed=9)
        listing = first.cli("faults", "list", "--json").stdout
    rules = tmp_path / "rules.ndjson"
    rules.write_text(listing)
    # Another database: its only app takes the rules (the file's SDKAppID is another app's).
    lines = [json.loads(line) for line in listing.splitlines()]
    for line in lines:
        line.pop("SDKAppID")
    rules.write_text("\n".join(json.dumps(line) for line in lines))
    with start_server(args=["--faults", str(rules)], folder=tmp_path / "second") as second:
        loaded = second.faults()
        assert [(r["Command"], r["Code"], r["Times"], r["Seed"]) for r in loaded] == [
            ("account_check", 70202, 1, 3), ("kick", None, None, 9)]
        assert second.call("account_check", {"CheckItem": [{"UserID": "a"}]})["ErrorCode"] == 70202
        # A restart with the same file replaces the app's rules instead of adding copies.
        second.restart()
        assert len(second.faults()) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('[{"Code": 70500, "Oops": 1}]')
    done = subprocess.run([sys.executable, "-m", "timserver", "serve", "--port", "1", "--db",
                           f"sqlite:///{tmp_path / 'second' / 'timserver.db'}", "--faults",
                           str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Oops" in done.stderr


def test_control_answers_are_json_envelopes_with_cors(tim_server: TimServer) -> None:
    response = httpx.options(f"{tim_server.base_url}/_timserver/faults")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    answer = tim_server.control("GET", "/_timserver/faults")
    assert list(answer) == ["ActionStatus", "ErrorCode", "ErrorInfo", "Rules"]
