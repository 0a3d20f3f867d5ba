"""The journal as the console reads it: the console's own actions are in it, under their
command's name, and it filters by command, code, UserID and app."""

from __future__ import annotations

import json

from console_support import TOKEN
from support import make_app, uid
from test_console_endpoints import admin_params, envelope

from timserver.server.console import TOKEN_HEADER

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
