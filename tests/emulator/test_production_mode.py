"""``timserver serve --no-emulator``: the emulator's powers are gone from the running server.

Through real servers on both backends: every control path answers like an unknown path, and
what the CLI writes to the database for the emulator (fault rules, clock offsets) never reaches
the server. The same calls against a server with the emulator on prove each test can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import LiveServer, query

from timserver import usersig
from timserver.storage import App

pytestmark = pytest.mark.slow  # servers in child processes

CHECK = "/v4/im_open_login_svc/account_check"
CONTROL = [("POST", "/_timserver/clock", {"Offset": -3_000_000}),
           ("GET", "/_timserver/clock", None),
           ("POST", "/_timserver/reset", {}),
           ("POST", "/_timserver/faults", {"Code": 70500}),
           ("GET", "/_timserver/faults", None),
           ("POST", "/_timserver/faults/clear", {}),
           ("GET", "/_timserver/calls", None),
           ("POST", "/_timserver/calls/clear", {})]


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "timserver", *args[:2], "--db", db, *args[2:]],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "TIMSERVER_EMULATOR": ""})


def make_app(db: str) -> App:
    made = json.loads(cli(db, "app", "create", "--json").stdout)
    return App(sdkappid=made["sdkappid"], key=made["key"], edition=made["edition"],
               admins=tuple(made["admins"]))


def check(server: LiveServer, app: App, sig: str | None = None) -> dict[str, Any]:
    return httpx.post(f"{server.base_url}{CHECK}", params=query(app, sig=sig),
                      json={"CheckItem": [{"UserID": app.admins[0]}]}, timeout=10).json()


@pytest.fixture(params=["production", "emulator"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(any_live_db: str, mode: str) -> Iterator[tuple[LiveServer, App]]:
    app = make_app(any_live_db)
    server = LiveServer(any_live_db, *(["--no-emulator"] if mode == "production" else []))
    try:
        yield server, app
    finally:
        server.stop()


def test_health_says_which_mode(served: tuple[LiveServer, App], mode: str) -> None:
    server, _ = served
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok", "mode": mode}


def test_control_paths_answer_as_unknown_paths(served: tuple[LiveServer, App], mode: str) -> None:
    server, app = served
    unknown = httpx.post(f"{server.base_url}/_timserver/no-such-thing", params=query(app),
                         json={}).json()
    assert unknown["ErrorCode"] == 60009
    for method, path, body in CONTROL:
        answer = httpx.request(method, f"{server.base_url}{path}", params=query(app),
                               json=body).json()
        if mode == "production":
            assert answer == unknown, path
        else:
            assert answer["ErrorCode"] == 0, (path, answer)


def test_clock_moved_by_an_admin_changes_nothing(served: tuple[LiveServer, App],
                                                 mode: str) -> None:
    server, app = served
    day_old = usersig.generate(app.sdkappid, app.key, app.admins[0], 60,
                               now=int(time.time()) - 86400)
    assert check(server, app, day_old)["ErrorCode"] == 70001
    httpx.post(f"{server.base_url}/_timserver/clock", params=query(app),
               json={"Offset": -86400})
    code = check(server, app, day_old)["ErrorCode"]
    assert code == (70001 if mode == "production" else 0)


def test_reset_by_an_admin_deletes_nothing(served: tuple[LiveServer, App], mode: str) -> None:
    server, app = served
    imported = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_import",
                          params=query(app), json={"UserID": "stays"}).json()
    assert imported["ErrorCode"] == 0
    httpx.post(f"{server.base_url}/_timserver/reset", params=query(app), json={})
    answer = httpx.post(f"{server.base_url}{CHECK}", params=query(app),
                        json={"CheckItem": [{"UserID": "stays"}]}).json()
    status = answer["ResultItem"][0]["AccountStatus"]
    assert status == ("Imported" if mode == "production" else "NotImported")


def test_rules_and_clock_written_by_the_cli_are_ignored(served: tuple[LiveServer, App],
                                                        mode: str, any_live_db: str) -> None:
    server, app = served
    cli(any_live_db, "faults", "add", "--sdkappid", str(app.sdkappid), "--command",
        "account_check", "--code", "70202")
    cli(any_live_db, "clock", "set", "--sdkappid", str(app.sdkappid), "--", "-86400")
    day_old = usersig.generate(app.sdkappid, app.key, app.admins[0], 60,
                               now=int(time.time()) - 86400)
    deadline = time.monotonic() + 5  # a CLI change reaches an emulator on its next call
    while True:
        fresh, old = check(server, app)["ErrorCode"], check(server, app, day_old)["ErrorCode"]
        if mode == "production" or (fresh, old) != (0, 70001) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if mode == "production":
        assert (fresh, old) == (0, 70001)
    else:
        assert fresh == 70202 and old == 70202  # the rule fires after the clock let it in


def test_emulator_only_options_are_refused(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    done = subprocess.run([sys.executable, "-m", "timserver", "serve", "--db", db,
                           "--no-emulator", "--clock-offset", "60"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--clock-offset is an emulator power" in done.stderr
