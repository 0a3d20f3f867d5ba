"""Login state, profiles and deletion by edition (docs/protocol.md §11) through the in-process
server, on SQLite and PostgreSQL; the black-box contract suite (tests/contract/) drives a live
server the same way over loopback."""

from __future__ import annotations

import time

import pytest
from support import Api, make_app, sign, uid

from timserver.protocol.errors import OPENIM_PARSE_INFO

DAY = 86400


async def _imported(api: Api, *names: str, nick: str | None = None) -> list[str]:
    ids = [uid(n) for n in names]
    for user in ids:
        body = {"UserID": user} if nick is None else {"UserID": user, "Nick": nick}
        assert (await api.call("account_import", body))["ErrorCode"] == 0
    return ids


def _days_in(seconds: float) -> set[str]:
    """The UTC date ``seconds`` from now, or from a minute ago (a test may cross midnight)."""
    now = time.time()
    return {time.strftime("%Y-%m-%d", time.gmtime(t + seconds)) for t in (now - 60, now)}


async def _status(api: Api, *ids: str, **flags: int) -> dict:
    return await api.call("query_online_status", {"To_Account": list(ids), **flags})


async def test_status_follows_logins_disconnects_and_the_app_clock(api: Api) -> None:
    """§11.1, §11.2: Online, PushOnline for a dropped mobile device, Offline 7 days later."""
    api.expire = 30 * DAY  # the admin's UserSigs outlive the clock's moves
    a, b = await _imported(api, "a", "b")
    missing = uid("gone")
    answer = await _status(api, a, missing, b)
    assert answer == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
                      "QueryResult": [{"To_Account": a, "Status": "Offline"},
                                      {"To_Account": b, "Status": "Offline"}],
                      "ErrorList": [{"To_Account": missing, "ErrorCode": 70107}]}
    for platform in ("iPhone", "Web"):
        done = await api.control("login", {"UserID": a, "Platform": platform})
        assert done["ErrorCode"] == 0 and done["Device"]["Status"] == "Online", done
    answer = await _status(api, a, IsNeedDetail=1, IsReturnInstid=1)
    (item,) = answer["QueryResult"]
    assert item["Status"] == "Online"
    assert [(d["Platform"], d["Status"]) for d in item["Detail"]] == [("Web", "Online"),
                                                                      ("iPhone", "Online")]
    assert all(isinstance(d["InstId"], int) and d["InstId"] > 0 for d in item["Detail"])
    assert "InstId" not in (await _status(api, a, IsNeedDetail=1))["QueryResult"][0]["Detail"][0]
    assert "Detail" not in (await _status(api, a))["QueryResult"][0]

    dropped = await api.control("disconnect", {"UserID": a})
    assert sorted((d["Platform"], d["Status"]) for d in dropped["Disconnected"]) == [
        ("Web", "Offline"), ("iPhone", "PushOnline")]
    assert (await _status(api, a))["QueryResult"][0]["Status"] == "PushOnline"
    assert (await api.control("clock", {"Advance": 7 * DAY - 60}))["ErrorCode"] == 0
    assert (await _status(api, a))["QueryResult"][0]["Status"] == "PushOnline"
    assert (await api.control("clock", {"Advance": 120}))["ErrorCode"] == 0
    assert (await _status(api, a, IsNeedDetail=1))["QueryResult"][0] == {
        "To_Account": a, "Status": "Offline"}


async def test_querystate_spells_the_status_state_and_every_failure_is_70107(api: Api) -> None:
    """§11.1: the legacy path; a call whose accounts all failed answers 70107."""
    (a,) = await _imported(api, "a")
    await api.control("login", {"UserID": a, "Platform": "Android"})
    answer = await api.call("querystate", {"To_Account": [a], "IsNeedDetail": 1})
    assert answer["QueryResult"] == [{"To_Account": a, "State": "Online", "Detail": [
        {"Platform": "Android", "Status": "Online"}]}]
    failed = await _status(api, uid("x"), "bad\nid")
    assert (failed["ActionStatus"], failed["ErrorCode"], failed["QueryResult"]) == ("FAIL", 70107,
                                                                                   [])
    assert [e["ErrorCode"] for e in failed["ErrorList"]] == [70107, 70107]


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", 90001), (b"[]", 90001), (b"{}", 90001), (b'{"To_Account": []}', 90001),
    (b'{"To_Account": "a"}', 90001), (b'{"To_Account": ["a"], "IsNeedDetail": "1"}', 90001),
    (b'{"To_Account": ["a", 1]}', 90003), (b'{"To_Account": [null]}', 90003),
])
async def test_openim_body_codes(api: Api, body: bytes, code: int) -> None:
    """§11.1: the command's own codes instead of 60003 / 70402 / 60015."""
    answer = await api.call("query_online_status", body)
    assert answer["ErrorCode"] == code and answer["ActionStatus"] == "FAIL", answer
    if code == 90001:
        assert answer["ErrorInfo"] == OPENIM_PARSE_INFO
    assert list(answer) == ["ActionStatus", "ErrorInfo", "ErrorCode"]


async def test_501_accounts_is_90011_and_500_are_served(api: Api) -> None:
    ids = [f"n{i}" for i in range(501)]
    assert (await _status(api, *ids))["ErrorCode"] == 90011
    assert len((await _status(api, *ids[:500]))["ErrorList"]) == 500


async def test_a_users_own_usersig_logs_it_in_until_it_is_kicked(api: Api) -> None:
    """§11.2: self-signed logins obey the UserSig checks; another user may not; kick logs out."""
    a, b = await _imported(api, "a", "b")
    own = sign(api.app, a, now=int(time.time()) - 5)
    done = await api.control("login", {"UserID": a, "Platform": "PC"}, identifier=a, sig=own)
    assert done["ErrorCode"] == 0, done
    other = await api.control("login", {"UserID": a, "Platform": "Mac"}, identifier=b,
                              sig=sign(api.app, b))
    assert other["ErrorCode"] == 70403
    assert (await api.call("kick", {"UserID": a}))["ErrorCode"] == 0
    assert (await _status(api, a))["QueryResult"][0]["Status"] == "Offline"  # kick logged out
    again = await api.control("login", {"UserID": a, "Platform": "PC"}, identifier=a, sig=own)
    assert again["ErrorCode"] == 70005
    unknown = uid("nobody")
    answer = await api.control("login", {"UserID": unknown, "Platform": "PC"})
    assert answer["ErrorCode"] == 70107
    for bad in ({"UserID": a}, {"UserID": a, "Platform": "iphone"}, {"Platform": "Web"},
                {"UserID": 5, "Platform": "Web"}, {"UserID": a, "Platform": "Web", "X": 1}):
        assert (await api.control("login", bad))["ErrorCode"] == 70402, bad


async def test_delete_removes_the_login_state(api: Api) -> None:
    (a,) = await _imported(api, "a")
    await api.control("login", {"UserID": a, "Platform": "iPad"})
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ErrorCode"] == 0
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 0
    assert (await _status(api, a))["QueryResult"][0]["Status"] == "Offline"


async def test_portraits_are_the_imported_nick_and_face_url(api: Api) -> None:
    """§11.4: the same stored values; "" for a tag never set; Fail_Account; ErrorDisplay."""
    (a,) = await _imported(api, "a", nick="Nick A")
    missing = uid("gone")
    tags = ["Tag_Profile_IM_Image", "Tag_Profile_IM_Nick"]
    got = await api.call("portrait_get", {"To_Account": [a, missing], "TagList": tags})
    assert got == {"UserProfileItem": [
        {"To_Account": a, "ProfileItem": [{"Tag": "Tag_Profile_IM_Image", "Value": ""},
                                          {"Tag": "Tag_Profile_IM_Nick", "Value": "Nick A"}],
         "ResultCode": 0, "ResultInfo": ""},
        {"To_Account": missing, "ProfileItem": [], "ResultCode": 40003,
         "ResultInfo": got["UserProfileItem"][1]["ResultInfo"]}],
        "Fail_Account": [missing], "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
        "ErrorDisplay": ""}
    done = await api.call("portrait_set", {"From_Account": a, "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Image", "Value": "https://x/y.png"}]})
    assert done == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "ErrorDisplay": ""}
    got = await api.call("portrait_get", {"To_Account": [a], "TagList": tags})
    assert [i["Value"] for i in got["UserProfileItem"][0]["ProfileItem"]] == ["https://x/y.png",
                                                                            "Nick A"]
    assert "Fail_Account" not in got


@pytest.mark.parametrize(("command", "body", "code"), [
    ("portrait_get", {"TagList": ["Tag_Profile_IM_Nick"]}, 40002),
    ("portrait_get", {"To_Account": [], "TagList": ["Tag_Profile_IM_Nick"]}, 40001),
    ("portrait_get", {"To_Account": ["a"], "TagList": ["Tag_Profile_IM_Gender"]}, 40009),
    ("portrait_get", b"{", 40001),
    ("portrait_set", {"From_Account": "EXISTING", "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Nick", "Value": 5}]}, 40610),
    ("portrait_set", {"From_Account": "EXISTING", "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Nick", "Value": "x" * 501}]}, 40601),
    ("portrait_set", {"From_Account": "EXISTING", "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Location", "Value": "x"}]}, 40009),
    ("portrait_set", {"From_Account": "nobody-here", "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Nick", "Value": "x"}]}, 40003),
    ("portrait_set", {"From_Account": 7, "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Nick", "Value": "x"}]}, 40001),
])
async def test_profile_codes_carry_error_display(api: Api, command: str, body: object,
                                                 code: int) -> None:
    (existing,) = await _imported(api, "e")
    if isinstance(body, dict) and body.get("From_Account") == "EXISTING":
        body = {**body, "From_Account": existing}
    answer = await api.call(command, body)
    assert answer == {"ActionStatus": "FAIL", "ErrorInfo": answer["ErrorInfo"], "ErrorCode": code,
                      "ErrorDisplay": ""}, answer
    assert answer["ErrorInfo"]


async def test_framework_failures_of_profile_commands_have_three_fields(api: Api) -> None:
    answer = await api.call("portrait_get", {"To_Account": ["a"], "TagList": []}, usersig="x")
    assert list(answer) == ["ActionStatus", "ErrorInfo", "ErrorCode"] and answer["ErrorCode"] == 70003


async def test_pro_deletion_is_switched_on_per_app_and_bans_for_90_days(server_app,
                                                                        client) -> None:
    """§11.5 on the app's clock; a reset lifts the bans."""
    app = await make_app(server_app, edition="pro")
    api = Api(client, app, expire=400 * DAY)
    (a,) = await _imported(api, "a")
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ErrorCode"] == 71000
    storage = server_app.state.storage
    api.app = await storage.update_app(app.sdkappid, allow_delete=True)
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ResultItem"][0][
        "ResultCode"] == 0
    single = await api.call("account_import", {"UserID": a})
    assert single["ErrorCode"] == 70399, single
    assert any(f"again from {day} " in single["ErrorInfo"] for day in _days_in(90 * DAY)), single
    batch = await api.call("multiaccount_import", {"Accounts": [a, uid("fresh")]})
    assert batch["FailAccounts"] == [a]
    await api.control("clock", {"Advance": 89 * DAY})
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 70399
    await api.control("clock", {"Advance": 2 * DAY})
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 0
    # a reset lifts the ban of a UserID deleted again
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ResultItem"][0][
        "ResultCode"] == 0
    assert (await api.control("reset", {}))["ErrorCode"] == 0
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 0


@pytest.mark.parametrize("edition", ["developer", "trial"])
async def test_other_editions_delete_and_import_again_at_once(server_app, client,
                                                              edition: str) -> None:
    """§11.5: only a pro app's deletions ban a UserID."""
    api = Api(client, await make_app(server_app, edition=edition))
    (a,) = await _imported(api, "a")
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ResultItem"][0][
        "ResultCode"] == 0
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 0
    assert (await api.call("account_delete", {"DeleteItem": [{"UserID": a}]}))["ResultItem"][0][
        "ResultCode"] == 0
    assert (await api.call("multiaccount_import", {"Accounts": [a]}))["FailAccounts"] == []


async def test_the_service_says_why_each_account_of_a_batch_failed(server_app, client) -> None:
    """What the console shows for a batch import (never on the wire: FailAccounts only)."""
    from timserver.protocol import messages as m

    storage = server_app.state.storage
    app = await make_app(server_app, edition="pro")
    app = await storage.update_app(app.sdkappid, allow_delete=True)
    api = Api(client, app)
    (gone,) = await _imported(api, "gone")
    await api.call("account_delete", {"DeleteItem": [{"UserID": gone}]})
    service = server_app.state.dispatcher.accounts
    answer = await service.multiaccount_import(app, m.MultiAccountImportRequest(AccountList=[
        m.AccountListItem(UserID="", Nick="x"), m.AccountListItem(UserID="ok1"),
        m.AccountListItem(UserID="nick", Nick="n" * 501),
        m.AccountListItem(UserID=gone)]))
    assert answer.FailAccounts == ["", "nick", gone]
    reasons = m.fail_reasons(answer)
    assert reasons[""] == "UserID is invalid: it is empty."
    assert reasons["nick"] == "Nick is 501 bytes long; at most 500 are allowed."
    assert reasons[gone].startswith("It was deleted from this pro-edition app") and reasons[
        gone].endswith("(70399).")
    # the date it can come back: 90 days after the deletion, on the app's clock
    assert any(f"again from {day} " in reasons[gone] for day in _days_in(90 * DAY))
    assert "UTC (app clock) (70399)." in reasons[gone]
    assert await storage.existing(app.sdkappid, ["ok1", gone]) == {"ok1"}  # the rest went in
    old = await service.multiaccount_import(app, m.MultiAccountImportRequest(
        Accounts=["bad\x01", "fine"]))
    assert m.fail_reasons(old) == {"bad\x01": "UserID is invalid: it contains a control character."}
    trial = await make_app(server_app, edition="trial")
    full = [f"t{i}" for i in range(100)]
    await service.multiaccount_import(trial, m.MultiAccountImportRequest(Accounts=full))
    over = await service.multiaccount_import(trial, m.MultiAccountImportRequest(Accounts=["t100"]))
    assert m.fail_reasons(over) == {"t100": "The app's edition allows no more accounts (70398)."}
