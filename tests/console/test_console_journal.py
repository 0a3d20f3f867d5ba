"""The journal as the console reads it: the console's own actions are in it, under their
command's name, and it filters by command, code, UserID and app."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from console_support import LIVE_APP, TOKEN
from support import KEY, LiveServer, cli, make_app, uid
from test_console_endpoints import admin_params, envelope

from timserver import usersig
from timserver.server.console import TOKEN_HEADER
from timserver.server.journal import Journal

AUTH = {TOKEN_HEADER: TOKEN}


async def test_console_actions_are_journaled_as_their_command(make_console) -> None:
    console = await make_console(record_bodies=True, emulator=True)
    app = await make_app(console.asgi, sdkappid=1400000131)
    user = uid("acted")
    body = {"AccountList": [{"UserID": user}]}
    envelope(await console.post("/_timserver/accounts/import", params=admin_params(app),
                                content=json.dumps(body)))
    await console.post("/_timserver/accounts/kick", params=admin_params(app),
                       content=json.dumps({"UserID": uid("ghost")}))
    envelope(await console.post("/_timserver/accounts/delete", params=admin_params(app),
                                content=json.dumps({"DeleteItem": [{"UserID": user}]})))
    await console.get("/_timserver/accounts", params=admin_params(app))  # a read: not journaled
    entries = envelope(await console.get("/_timserver/journal",
                                         params=admin_params(app)))["Entries"]
    assert [(e["Command"], e["ErrorCode"], e["Path"]) for e in entries] == [
        ("multiaccount_import", 0, "/_timserver/accounts/import"),
        ("kick", 70107, "/_timserver/accounts/kick"),
        ("account_delete", 0, "/_timserver/accounts/delete")]
    imported = entries[0]
    assert imported["UserIDs"] == [user] and json.loads(imported["RequestBody"]) == body
    assert json.loads(imported["ResponseBody"])["Imported"] == 1
    assert imported["RequestBytes"] == len(json.dumps(body))
    assert "usersig" not in json.dumps(entries).lower()


async def test_the_journal_filters_by_command_code_user_and_app(make_console) -> None:
    console = await make_console(record_bodies=True, emulator=True)
    a = await make_app(console.asgi, sdkappid=1400000132)
    b = await make_app(console.asgi, sdkappid=1400000133)
    user = uid("named")
    for app in (a, b):
        await console.post("/_timserver/accounts/import", params=admin_params(app),
                           content=json.dumps({"AccountList": [{"UserID": user}]}))
        await console.post("/_timserver/accounts/kick", params=admin_params(app),
                           content=json.dumps({"UserID": uid("ghost")}))

    assert (await _read(console, command="kick")) == [(a.sdkappid, "kick"),
                                                      (b.sdkappid, "kick")]
    assert (await _read(console, code="70107", app=str(b.sdkappid))) == [(b.sdkappid, "kick")]
    assert (await _read(console, user_id=user)) == [(a.sdkappid, "multiaccount_import"),
                                                    (b.sdkappid, "multiaccount_import")]
    mine = envelope(await console.get("/_timserver/journal",
                                      params={**admin_params(a), "command": "kick"}))
    assert [e["SDKAppID"] for e in mine["Entries"]] == [a.sdkappid]
    bad = (await console.get("/_timserver/console/journal", headers=AUTH,
                             params={"code": "x"})).json()
    assert bad["ErrorCode"] == 70402


async def _read(console, **params: str) -> list[tuple]:
    found = envelope(await console.get("/_timserver/console/journal", headers=AUTH,
                                       params=params))
    return [(e["SDKAppID"], e["Command"]) for e in found["Entries"]]


def test_workers_read_each_others_calls_through_the_shared_folder(tmp_path) -> None:
    """serve --workers N: whichever worker answers a read shows every worker's calls."""
    first = Journal(10, shared_dir=str(tmp_path))
    second = Journal(10, shared_dir=str(tmp_path))
    second.pid = first.pid + 1  # two workers in one test process
    first.record("POST", "/v4/a/kick", "kick", 1400000140, "admin", 70107, 1.0, 10, 80, now=1.0)
    second.record("POST", "/v4/a/kick", "kick", 1400000141, "admin", 0, 1.0, 10, 80, now=2.0)
    for reader in (first, second):
        found = reader.entries()
        assert [e.Id for e in found] == [f"{first.pid}-1", f"{second.pid}-1"]
        assert reader.rings_read == 2
    assert [e.SDKAppID for e in second.entries(code=70107)] == [1400000140]
    assert second.clear(1400000140) == 1  # clearing an app hides the other workers' copies too
    assert [e.SDKAppID for e in first.entries()] == [1400000141]
    assert [e.SDKAppID for e in second.entries()] == [1400000141]
    alone = Journal(10)
    alone.record("POST", "/v4/a/kick", "kick", 1, "admin", 0, 1.0, 10, 80)
    assert alone.rings_read == 1 and len(alone.entries()) == 1


def test_with_workers_one_connection_sees_every_workers_calls(tmp_path, monkeypatch) -> None:
    """Today's symptom: the console's polls (one kept-alive connection, so one worker) showed
    only that worker's calls."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    cli("app", "create", "--sdkappid", str(LIVE_APP), "--key", KEY, db=db)
    cli("app", "set-limit", str(LIVE_APP), "account_check", "0", db=db)
    monkeypatch.setenv("TIMSERVER_CONSOLE_TOKEN", TOKEN)
    server = LiveServer(db, "--workers", "2")
    try:
        sig = usersig.generate(LIVE_APP, KEY, "administrator", 3600, now=int(time.time()))
        url = (f"{server.base_url}/v4/im_open_login_svc/account_check?sdkappid={LIVE_APP}"
               f"&identifier=administrator&usersig={sig}&random=1&contenttype=json")

        def call(_: int) -> int:  # a new connection each: the kernel spreads them
            return httpx.post(url, json={"CheckItem": [{"UserID": "x"}]}).json()["ErrorCode"]

        def journal(expected: int) -> tuple[dict, list[dict]]:
            with httpx.Client(base_url=server.base_url, headers=AUTH) as reader:
                deadline = time.monotonic() + 5
                while True:
                    answer = reader.get("/_timserver/console/journal").json()
                    checks = [e for e in answer["Entries"] if e["Command"] == "account_check"]
                    if len(checks) == expected or time.monotonic() > deadline:
                        return answer, checks
                    time.sleep(0.1)

        sent = 0
        for _ in range(8):  # bounded: until both workers took calls (the kernel decides who)
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(call, range(24))) == {0}
            sent += 24
            answer, checks = journal(sent)
            assert len(checks) == sent, answer  # one reader sees every call, whoever took it
            if len({e["Id"].split("-")[0] for e in checks}) == 2:
                break
        pids = {e["Id"].split("-")[0] for e in checks}
        assert answer["Workers"] == 2 and len(pids) == 2, pids  # both workers took calls
    finally:
        server.stop()
