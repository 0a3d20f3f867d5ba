"""The bulk CLI, ``usersig`` and ``app`` commands, run as a user runs them against a real server
(issue 15, items 5, 6, 7, 9): every mistake is one clear line, nothing is left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import TLSSigAPIv2
from support import LiveServer, cli

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
SDKAPPID = 1400000700


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'a.db'}"
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--key", KEY, db=db)
    running = LiveServer(db)
    yield running
    running.stop()


def accounts(server: LiveServer, *args: str, key: str = KEY, cwd: Path | None = None,
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIMSERVER_ENDPOINT": server.base_url,
           "TIMSERVER_SDKAPPID": str(SDKAPPID), "TIMSERVER_KEY": key}
    return subprocess.run([sys.executable, "-m", "timserver", "accounts", *args, "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def check(server: LiveServer, user_ids: list[str]) -> dict[str, str]:
    sig = TLSSigAPIv2.TLSSigAPIv2(SDKAPPID, KEY).gen_sig("administrator")
    answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                        params={"sdkappid": SDKAPPID, "identifier": "administrator",
                                "usersig": sig, "random": 1, "contenttype": "json"},
                        json={"CheckItem": [{"UserID": u} for u in user_ids]}).json()
    return {r["UserID"]: r["AccountStatus"] for r in answer["ResultItem"]}


# --- 5. check -o into a folder that does not exist --------------------------------------------


def test_check_into_a_missing_folder_says_so_and_leaves_no_state(server, tmp_path) -> None:
    source = tmp_path / "users.csv"
    source.write_text("UserID\nalice\n")
    done = accounts(server, "check", str(source), "-o", str(tmp_path / "missing" / "x.csv"))
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and "Usage:" not in line, done.stderr
    assert "missing/x.csv" in line and "does not exist" in line
    assert "--resume" not in line and "earlier run" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.csv"]


# --- 6. every bad line in one pass; --skip-invalid sends the others ---------------------------


def test_every_bad_line_is_reported_in_one_pass_and_nothing_is_sent(server, tmp_path) -> None:
    source = tmp_path / "users.csv"
    source.write_text("UserID,Nick\nbl_a,A\n,no one\nbl_b,B\n,x\nbl_c,C\n")
    done = accounts(server, "import", str(source))
    assert done.returncode == 2 and "Usage:" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[:2] == [f"{source}:3: no UserID", f"{source}:5: no UserID"]
    assert len(lines) == 3 and "--skip-invalid" in lines[2]
    assert check(server, ["bl_a", "bl_b"]) == {"bl_a": "NotImported", "bl_b": "NotImported"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.csv"]  # no state left


def test_skip_invalid_imports_the_rest_and_lists_the_bad_lines(server, tmp_path) -> None:
    source = tmp_path / "users.ndjson"
    source.write_text('{"UserID": "sk_a"}\n{"UserID": \n{"UserID": "sk_b"}\n\xff\n')
    source.write_bytes(source.read_bytes().replace("\xff".encode(), b"\xff"))
    done = accounts(server, "import", str(source), "--skip-invalid")
    assert done.returncode == 1, done.stderr  # some lines failed
    assert check(server, ["sk_a", "sk_b"]) == {"sk_a": "Imported", "sk_b": "Imported"}
    failed = (tmp_path / "users.ndjson.import-failed.csv").read_text().splitlines()
    assert failed[0] == "UserID,ErrorCode,ErrorInfo" and len(failed) == 3
    assert "line 2:" in failed[1] and "line 4: not UTF-8" in failed[2]


# --- 7. a wrong key: stops at the first call, with the fix, no state file ---------------------


@pytest.mark.parametrize("kind", ["import", "check", "delete"])
def test_a_wrong_key_stops_at_once_with_the_fix_and_no_state(server, tmp_path, kind) -> None:
    source = tmp_path / "users.txt"
    source.write_text("".join(f"wk_{i}\n" for i in range(500)))
    done = accounts(server, kind, str(source), key="0" * 64)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line, done.stderr
    assert "70009" in line and "TIMSERVER_KEY" in line and f"app show {SDKAPPID}" in line
    assert "--resume" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.txt"]


def test_a_wrong_admin_names_the_admin(server, tmp_path) -> None:
    source = tmp_path / "users.txt"
    source.write_text("x\n")
    env_admin = {"TIMSERVER_ADMIN": "not_an_admin"}
    done = subprocess.run(
        [sys.executable, "-m", "timserver", "accounts", "import", str(source), "--no-progress"],
        env={**os.environ, "TIMSERVER_ENDPOINT": server.base_url,
             "TIMSERVER_SDKAPPID": str(SDKAPPID), "TIMSERVER_KEY": KEY, **env_admin},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "TIMSERVER_ADMIN" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.txt"]


# --- 9. usersig and app ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["nothex", "0" * 63, "g" * 64])
def test_usersig_gen_refuses_a_key_app_create_refuses(tmp_path, key) -> None:
    done = cli("usersig", "gen", "--sdkappid", "1400000000", "--key", key, "--identifier", "a",
               check=False)
    assert done.returncode != 0 and done.stdout == ""
    assert "64 hex" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    made = cli("app", "create", "--key", key, db=f"sqlite:///{tmp_path / 'a.db'}", check=False)
    assert made.returncode != 0 and "64 hex" in made.stderr


def test_usersig_follows_the_apps_emulator_clock(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--key", KEY, db=db)
    sig = cli("usersig", "gen", "--sdkappid", str(SDKAPPID), "--key", KEY, "--identifier",
              "administrator", "--expire", "600", db=db).stdout.strip()
    cli("clock", "set", "3600", db=db)  # what serve --clock-offset 3600 does
    server = LiveServer(db)
    try:
        explained = cli("usersig", "explain", sig, "--key", KEY, db=db, check=False)
        answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                            params={"sdkappid": SDKAPPID, "identifier": "administrator",
                                    "usersig": sig, "random": 1, "contenttype": "json"},
                            json={"CheckItem": [{"UserID": "administrator"}]}).json()
        assert answer["ErrorCode"] == 70001  # the server's verdict ...
        assert explained.returncode == 1 and "70001" in explained.stdout  # ... and explain's
        fresh = cli("usersig", "gen", "--sdkappid", str(SDKAPPID), "--key", KEY, "--identifier",
                    "administrator", "--expire", "600", db=db).stdout.strip()
        answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                            params={"sdkappid": SDKAPPID, "identifier": "administrator",
                                    "usersig": fresh, "random": 2, "contenttype": "json"},
                            json={"CheckItem": [{"UserID": "administrator"}]}).json()
        assert answer["ActionStatus"] == "OK", answer  # signed at the app's time
        assert "Valid:      yes" in cli("usersig", "explain", fresh, "--key", KEY, db=db).stdout
    finally:
        server.stop()


def test_set_limit_with_a_negative_rate_says_what_rates_are(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--key", KEY, db=db)
    done = cli("app", "set-limit", str(SDKAPPID), "account_check", "-1", db=db, check=False)
    assert done.returncode != 0 and "No such option" not in done.stderr
    assert "0 (unlimited)" in done.stderr


def test_app_list_counts_accounts_as_the_console_does(tmp_path) -> None:
    """One rule: the accounts of an app include its admins (account_check says Imported for
    them), in `app list`, `app show` and the console's apps endpoint."""
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--key", KEY, "--admin", "boss",
        "--admin", "ops", db=db)
    seed = tmp_path / "users.txt"
    seed.write_text("u1\nu2\nu3\n")
    cli("seed", str(seed), "--sdkappid", str(SDKAPPID), db=db)
    assert "accounts=5" in cli("app", "list", db=db).stdout
    assert json.loads(cli("app", "show", str(SDKAPPID), "--json", db=db).stdout)["accounts"] == 5
    server = LiveServer(db)
    try:
        token = server.output().split("#token=")[1].split()[0].split("&")[0]
        apps = httpx.get(f"{server.base_url}/_timserver/console/apps",
                         headers={"X-Timserver-Console-Token": token}).json()
    finally:
        server.stop()
    (listed,) = apps["Apps"]
    assert listed["Accounts"] == 5


def test_kick_with_a_wrong_key_names_the_setting(server) -> None:
    env = {**os.environ, "TIMSERVER_ENDPOINT": server.base_url,
           "TIMSERVER_SDKAPPID": str(SDKAPPID), "TIMSERVER_KEY": "0" * 64}
    done = subprocess.run([sys.executable, "-m", "timserver", "accounts", "kick", "administrator"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "70009" in done.stderr and "TIMSERVER_KEY" in done.stderr
