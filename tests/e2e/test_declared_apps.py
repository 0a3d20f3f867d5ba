"""Apps declared at start (``serve --app``, ``TIMSERVER_APPS``, ``--dev-app``), through a real
``timserver serve`` and HTTP on loopback."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import httpx
import pytest
from support import LiveServer, cli, free_port, query

from timserver.service import apps as app_rules
from timserver.storage import App

KEY_A = "a" * 64
KEY_B = "b" * 64
KEY_A2 = "c" * 64
APP_A = 1400000101
APP_B = 1400000102


def check(server: LiveServer, sdkappid: int, key: str, admin: str = "administrator"
          ) -> dict[str, object]:
    """account_check of the admin itself, signed with ``key``."""
    app = App(sdkappid=sdkappid, key=key, edition="developer", admins=(admin,))
    resp = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                      params=query(app), json={"CheckItem": [{"UserID": admin}]}, timeout=10)
    assert resp.status_code == 200
    return resp.json()


def listed(db: str) -> dict[int, dict[str, object]]:
    rows = cli("app", "list", "--json", db=db).stdout.splitlines()
    return {row["sdkappid"]: row for row in map(json.loads, rows)}


def shown(db: str, sdkappid: int) -> dict[str, object]:
    return json.loads(cli("app", "show", str(sdkappid), "--json", db=db).stdout)


def test_declared_apps_are_created_rotated_by_redeclaring_and_idempotent(live_db: str) -> None:
    server = LiveServer(live_db, "--app", f"{APP_A}:{KEY_A}",
                        "--app", f"{APP_B}:{KEY_B}:boss,ops:trial")
    try:
        assert check(server, APP_A, KEY_A)["ActionStatus"] == "OK"
        assert check(server, APP_B, KEY_B, "ops")["ActionStatus"] == "OK"
        # an account made now must outlive the restarts below
        app_a = App(sdkappid=APP_A, key=KEY_A, edition="developer", admins=("administrator",))
        made = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_import",
                          params=query(app_a), json={"UserID": "kept"}, timeout=10).json()
        assert made["ActionStatus"] == "OK"
    finally:
        out = server.stop()
    # no random first app next to the declared ones; keys are never printed for them
    assert set(listed(live_db)) == {APP_A, APP_B}
    assert f"Declared app {APP_A} (developer, admins administrator): created." in out
    assert f"Declared app {APP_B} (trial, admins boss,ops): created." in out
    assert KEY_A not in out and KEY_B not in out and "Created a first app" not in out
    assert shown(live_db, APP_B)["admins"] == ["boss", "ops"]

    # The same declarations again: nothing changes.
    server = LiveServer(live_db, "--app", f"{APP_A}:{KEY_A}",
                        "--app", f"{APP_B}:{KEY_B}:boss,ops:trial")
    out = server.stop()
    assert f"Declared app {APP_A} (developer, admins administrator): unchanged." in out
    assert f"Declared app {APP_B} (trial, admins boss,ops): unchanged." in out

    # Another key rotates the app: the old key's UserSigs are refused, the new one's accepted;
    # what a declaration leaves out (B's admins and edition) stays as it was.
    server = LiveServer(live_db, "--app", f"{APP_A}:{KEY_A2}", "--app", f"{APP_B}:{KEY_B}")
    try:
        assert check(server, APP_A, KEY_A)["ErrorCode"] == 70009
        assert check(server, APP_A, KEY_A2)["ActionStatus"] == "OK"
        assert check(server, APP_B, KEY_B, "boss")["ActionStatus"] == "OK"
        answer = httpx.post(
            f"{server.base_url}/v4/im_open_login_svc/account_check",
            params=query(App(sdkappid=APP_A, key=KEY_A2, edition="developer",
                             admins=("administrator",))),
            json={"CheckItem": [{"UserID": "kept"}]}, timeout=10).json()
        assert answer["ResultItem"][0]["AccountStatus"] == "Imported"
    finally:
        out = server.stop()
    assert f"Declared app {APP_A} (developer, admins administrator): updated." in out
    assert shown(live_db, APP_A)["key"] == KEY_A2
    assert shown(live_db, APP_B)["edition"] == "trial"


def test_timserver_apps_env_declares_several(live_db: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMSERVER_APPS", f"{APP_A}:{KEY_A}::pro  {APP_B}:{KEY_B}:root")
    server = LiveServer(live_db)
    try:
        assert check(server, APP_A, KEY_A)["ActionStatus"] == "OK"
        assert check(server, APP_B, KEY_B, "root")["ActionStatus"] == "OK"
    finally:
        server.stop()
    apps = listed(live_db)
    assert set(apps) == {APP_A, APP_B}
    assert apps[APP_A]["edition"] == "pro" and apps[APP_B]["admins"] == ["root"]


@pytest.mark.parametrize("bad,message", [
    ("1400000103", "expected SDKAPPID:KEY"),
    (f"x14:{KEY_A}", "SDKAppID 'x14' is not a number"),
    ("1400000103:0123", "the key must be 64 hex characters"),
    (f"0:{KEY_A}", "SDKAppID must be an integer from 1"),
    (f"1400000103:{KEY_A}:{'x' * 33}", "is not a valid UserID"),
    (f"1400000103:{KEY_A}:admin:gold", "edition must be one of developer, trial, pro"),
    (f"1400000103:{KEY_A}:a:b:c", "5 ':'-separated fields"),
    (f"{APP_A}:{KEY_B}", "declared twice, differently"),
])
def test_a_bad_declaration_is_one_line_and_nothing_is_made(live_db: str, bad: str,
                                                           message: str) -> None:
    """Every declaration is checked before any is applied: the good one before it is not made."""
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "timserver", "serve", "--port", str(port), "--db", live_db,
         "--app", f"{APP_A}:{KEY_A}", "--app", bad],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and KEY_A not in done.stderr
    assert "listening" not in done.stdout
    assert listed(live_db) == {}


def test_dev_app_prints_the_first_app_banner_with_a_curl_that_works(live_db: str) -> None:
    server = LiveServer(live_db, "--dev-app")
    try:
        out = server.output()
        assert f"SDKAppID: {app_rules.DEV_SDKAPPID}" in out
        assert f"Key:      {app_rules.DEV_KEY}" in out
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        assert f"http://127.0.0.1:{server.port}/" in curl
        # the pasted command, run as a shell would (curl itself may be absent: httpx posts it)
        url, body = re.search(r"curl -s -X POST (\S+) -d (.+)$", curl).groups()
        answer = httpx.post(shlex.split(url)[0], content=shlex.split(body)[0], timeout=10).json()
        assert answer["ActionStatus"] == "OK"
        assert check(server, app_rules.DEV_SDKAPPID, app_rules.DEV_KEY)["ActionStatus"] == "OK"
    finally:
        server.stop()
    assert set(listed(live_db)) == {app_rules.DEV_SDKAPPID}


def test_an_explicit_declaration_of_the_dev_sdkappid_wins(live_db: str) -> None:
    server = LiveServer(live_db, "--dev-app", "--app", f"{app_rules.DEV_SDKAPPID}:{KEY_A}")
    try:
        assert check(server, app_rules.DEV_SDKAPPID, KEY_A)["ActionStatus"] == "OK"
        assert check(server, app_rules.DEV_SDKAPPID, app_rules.DEV_KEY)["ErrorCode"] == 70009
    finally:
        out = server.stop()
    assert app_rules.DEV_KEY not in out and KEY_A not in out


def test_parse_declared_units() -> None:
    assert app_rules.parse_declared(f"7:{KEY_A}") == app_rules.Declared(7, KEY_A)
    assert app_rules.parse_declared(f"7:{KEY_A}:a,b,a:trial") == app_rules.Declared(
        7, KEY_A, ("a", "b"), "trial")
    assert app_rules.parse_declared(f"7:{KEY_A}::pro") == app_rules.Declared(7, KEY_A, None, "pro")
    with pytest.raises(app_rules.AppConfigError, match="4294967295"):
        app_rules.parse_declared(f"4294967296:{KEY_A}")
    assert app_rules.check_declared([app_rules.Declared(7, KEY_A)] * 2) == [
        app_rules.Declared(7, KEY_A)]
