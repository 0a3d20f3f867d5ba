"""The five commands: docs/protocol.md §7 and §9, in process."""

from __future__ import annotations

import time

import pytest
from support import ADMIN, Api, make_app, query, sign, uid

from timserver.protocol.errors import ACCOUNT_NOT_EXIST_INFO

CHECK = "/v4/im_open_login_svc/account_check"


async def statuses(api: Api, ids: list[str]) -> list[str]:
    data = await api.call("account_check", {"CheckItem": [{"UserID": u} for u in ids]})
    assert data["ErrorCode"] == 0, data
    return [item["AccountStatus"] for item in data["ResultItem"]]


async def profile(server_app, app, user_id: str) -> tuple[str | None, str | None]:
    (acc,) = await server_app.state.storage.list_accounts(app.sdkappid, prefix=user_id, limit=1)
    assert acc.user_id == user_id
    return acc.nick, acc.face_url


# --- account_import ---------------------------------------------------------------------------

async def test_import_then_check(api) -> None:
    a, b = uid(), uid()
    data = await api.call("account_import", {"UserID": a, "Nick": "n", "FaceUrl": "http://x"})
    assert data == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
    assert await statuses(api, [a, b]) == ["Imported", "NotImported"]


async def test_import_is_idempotent_and_overwrites_only_given_fields(api, server_app) -> None:
    a = uid()
    await api.call("account_import", {"UserID": a, "Nick": "one", "FaceUrl": "http://one"})
    assert (await api.call("account_import", {"UserID": a, "Nick": "two"}))["ErrorCode"] == 0
    assert await profile(server_app, api.app, a) == ("two", "http://one")
    assert await server_app.state.storage.count_accounts(api.app.sdkappid) == 1


async def test_legacy_identifier_and_userid_wins(api) -> None:
    a, b = uid(), uid()
    assert (await api.call("account_import", {"Identifier": a}))["ErrorCode"] == 0
    assert (await api.call("account_import", {"UserID": b, "Identifier": 5}))["ErrorCode"] == 0
    assert await statuses(api, [a, b]) == ["Imported", "Imported"]
    assert (await api.call("account_import", {"Identifier": 5}))["ErrorCode"] == 60015


@pytest.mark.parametrize("user_id", ["", "x" * 33, "中" * 11, "a\x00b", "tab\there", "del\x7f"])
async def test_import_invalid_userid_is_70402(api, user_id) -> None:
    data = await api.call("account_import", {"UserID": user_id})
    assert data["ErrorCode"] == 70402 and data["ErrorInfo"]


@pytest.mark.parametrize("user_id", ["x" * 32, "中" * 10 + "ab", "with space", "Ü", "'; DROP --",
                                     "😀" * 8, "%s", "a/b?c=d&e"])
async def test_valid_userids_round_trip_byte_for_byte(api, user_id) -> None:
    assert (await api.call("account_import", {"UserID": user_id}))["ErrorCode"] == 0
    data = await api.call("account_check", {"CheckItem": [{"UserID": user_id}]})
    assert data["ResultItem"][0] == {"UserID": user_id, "ResultCode": 0, "ResultInfo": "",
                                     "AccountStatus": "Imported"}


async def test_userids_are_case_sensitive_and_not_trimmed(api) -> None:
    a = "Case_" + uid()
    await api.call("account_import", {"UserID": a})
    assert await statuses(api, [a, a.lower(), a.upper(), f" {a}", f"{a} "]) == \
        ["Imported", "NotImported", "NotImported", "NotImported", "NotImported"]


@pytest.mark.parametrize("field", ["Nick", "FaceUrl"])
async def test_import_profile_limits(api, field) -> None:
    ok = await api.call("account_import", {"UserID": uid(), field: "é" * 250})  # 500 bytes
    assert ok["ErrorCode"] == 0
    too_long = await api.call("account_import", {"UserID": uid(), field: "x" * 501})
    assert too_long["ErrorCode"] == 40601
    wrong_type = await api.call("account_import", {"UserID": uid(), field: 5})
    assert wrong_type["ErrorCode"] == 70402


async def test_import_missing_userid_is_70402(api) -> None:
    assert (await api.call("account_import", {"Nick": "x"}))["ErrorCode"] == 70402


# --- multiaccount_import ----------------------------------------------------------------------

async def test_multi_import_old_format(api, server_app) -> None:
    ids = [uid() for _ in range(5)]
    data = await api.call("multiaccount_import", {"Accounts": ids})
    assert data == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "FailAccounts": []}
    assert await statuses(api, ids) == ["Imported"] * 5


async def test_multi_import_old_format_never_touches_profiles(api, server_app) -> None:
    a = uid()
    await api.call("account_import", {"UserID": a, "Nick": "keep"})
    await api.call("multiaccount_import", {"Accounts": [a]})
    assert await profile(server_app, api.app, a) == ("keep", None)


async def test_multi_import_new_format_updates_profiles(api, server_app) -> None:
    a, b = uid(), uid()
    await api.call("account_import", {"UserID": a, "Nick": "old", "FaceUrl": "http://old"})
    data = await api.call("multiaccount_import", {"AccountList": [
        {"UserID": a, "Nick": "new"}, {"UserID": b, "Nick": "nb", "FaceUrl": "http://b"}]})
    assert data["FailAccounts"] == []
    assert await profile(server_app, api.app, a) == ("new", "http://old")
    assert await profile(server_app, api.app, b) == ("nb", "http://b")


async def test_multi_import_per_item_failures(api) -> None:
    good, long_nick, bad_nick = uid(), uid(), uid()
    data = await api.call("multiaccount_import", {"AccountList": [
        {"UserID": "x" * 33}, {"UserID": good}, {"UserID": long_nick, "Nick": "n" * 501},
        {"UserID": bad_nick, "FaceUrl": ["no"]}, {"UserID": ""}, {"UserID": "x" * 33}]})
    assert data["ErrorCode"] == 0
    assert data["FailAccounts"] == ["x" * 33, long_nick, bad_nick, ""]
    assert await statuses(api, [good, long_nick, bad_nick]) == ["Imported", "NotImported",
                                                                "NotImported"]


async def test_multi_import_duplicates_are_imported_once(api, server_app) -> None:
    a = uid()
    data = await api.call("multiaccount_import", {"Accounts": [a, a, a]})
    assert data["FailAccounts"] == []
    assert await server_app.state.storage.count_accounts(api.app.sdkappid) == 1


@pytest.mark.parametrize("body,code", [
    ({"Accounts": ["a"], "AccountList": [{"UserID": "b"}]}, 70402),
    ({}, 70402), ({"Accounts": []}, 70402), ({"Accounts": "a"}, 70402),
    ({"Accounts": [None]}, 70402), ({"Accounts": [1]}, 60015),
    ({"AccountList": ["a"]}, 70402), ({"AccountList": [{"Nick": "x"}]}, 70402),
    ({"AccountList": [{"UserID": 7}]}, 60015),
    ({"Accounts": [f"u{i}" for i in range(101)]}, 70402),
])
async def test_multi_import_call_level_failures(api, body, code) -> None:
    data = await api.call("multiaccount_import", body)
    assert data["ErrorCode"] == code and data["ActionStatus"] == "FAIL"
    assert "FailAccounts" not in data


# --- account_delete ---------------------------------------------------------------------------

async def test_delete_in_order_with_duplicates_and_missing(api) -> None:
    a, b, missing = uid(), uid(), uid()
    await api.call("multiaccount_import", {"Accounts": [a, b]})
    data = await api.call("account_delete", {"DeleteItem": [
        {"UserID": a}, {"UserID": missing}, {"UserID": a}, {"UserID": "x" * 33}, {"UserID": b}]})
    assert data["ErrorCode"] == 0
    items = data["ResultItem"]
    assert [i["UserID"] for i in items] == [a, missing, a, "x" * 33, b]
    assert [i["ResultCode"] for i in items] == [0, 70107, 70107, 70402, 0]
    assert items[1]["ResultInfo"] == ACCOUNT_NOT_EXIST_INFO
    assert items[0] == {"ResultCode": 0, "ResultInfo": "", "UserID": a}
    assert list(items[0]) == ["ResultCode", "ResultInfo", "UserID"]
    assert items[3]["ResultInfo"]
    assert await statuses(api, [a, b]) == ["NotImported", "NotImported"]


async def test_admins_are_accounts_and_cannot_be_deleted(api) -> None:
    assert await statuses(api, [ADMIN]) == ["Imported"]
    data = await api.call("account_delete", {"DeleteItem": [{"UserID": ADMIN}]})
    assert data["ResultItem"][0]["ResultCode"] == 70402
    assert "admin" in data["ResultItem"][0]["ResultInfo"]
    assert await statuses(api, [ADMIN]) == ["Imported"]


async def test_pro_edition_cannot_delete(client, server_app) -> None:
    pro = Api(client, await make_app(server_app, edition="pro"))
    a = uid()
    await pro.call("account_import", {"UserID": a})
    data = await pro.call("account_delete", {"DeleteItem": [{"UserID": a}]})
    assert data["ErrorCode"] == 71000
    # body validation comes before the edition's rule
    assert (await pro.call("account_delete", {"DeleteItem": []}))["ErrorCode"] == 70402
    assert await statuses(pro, [a]) == ["Imported"]


# --- account_check ----------------------------------------------------------------------------

async def test_check_invalid_item(api) -> None:
    data = await api.call("account_check", {"CheckItem": [{"UserID": "x" * 33}, {"UserID": ADMIN}]})
    bad, good = data["ResultItem"]
    assert bad["ResultCode"] == 70402 and bad["ResultInfo"] and bad["AccountStatus"] == "NotImported"
    assert good["AccountStatus"] == "Imported"


async def test_check_mirrors_duplicates(api) -> None:
    a = uid()
    await api.call("account_import", {"UserID": a})
    assert await statuses(api, [a, "nobody", a]) == ["Imported", "NotImported", "Imported"]


# --- editions ---------------------------------------------------------------------------------

async def test_trial_cap_is_100_accounts_admins_excluded(client, server_app) -> None:
    trial = Api(client, await make_app(server_app, edition="trial", admins=(ADMIN, "admin2")))
    first = [uid() for _ in range(98)]
    assert (await trial.call("multiaccount_import", {"Accounts": first}))["FailAccounts"] == []
    extra = [uid() for _ in range(4)]
    data = await trial.call("multiaccount_import", {"Accounts": [*extra, first[0]]})
    assert data["FailAccounts"] == extra[2:]  # two places left; re-importing takes none
    single = await trial.call("account_import", {"UserID": uid()})
    assert single["ErrorCode"] == 70398
    assert (await trial.call("account_import", {"UserID": first[1], "Nick": "x"}))["ErrorCode"] == 0
    await trial.call("account_delete", {"DeleteItem": [{"UserID": first[2]}]})
    assert (await trial.call("account_import", {"UserID": uid()}))["ErrorCode"] == 0


# --- kick -------------------------------------------------------------------------------------

async def test_kick_unknown_is_70107(api) -> None:
    data = await api.call("kick", {"UserID": uid()})
    assert data["ErrorCode"] == 70107


async def test_kick_invalidates_earlier_sigs_of_that_user(client, server_app) -> None:
    app = await make_app(server_app, admins=(ADMIN, "ops"))
    ops_old = sign(app, "ops", now=int(time.time()) - 5)
    body = b'{"CheckItem":[{"UserID":"ops"}]}'
    resp = await client.post(CHECK, params=query(app, identifier="ops", sig=ops_old), content=body)
    assert resp.json()["ErrorCode"] == 0
    before = int(time.time())
    assert (await Api(client, app).call("kick", {"Identifier": "ops"}))["ErrorCode"] == 0
    after = int(time.time())
    resp = await client.post(CHECK, params=query(app, identifier="ops", sig=ops_old), content=body)
    assert resp.json()["ErrorCode"] == 70005
    # signed in the second of the kick (which lies in [before, after]): refused too
    same_second = sign(app, "ops", now=before)
    resp = await client.post(CHECK, params=query(app, identifier="ops", sig=same_second),
                             content=body)
    assert resp.json()["ErrorCode"] == 70005
    fresh = sign(app, "ops", now=after + 1)
    resp = await client.post(CHECK, params=query(app, identifier="ops", sig=fresh), content=body)
    assert resp.json()["ErrorCode"] == 0
    # the other admin is untouched
    assert (await Api(client, app).call("account_check", {"CheckItem": [{"UserID": "x"}]})
            )["ErrorCode"] == 0


async def test_kick_invalid_userid_is_70402(api) -> None:
    assert (await api.call("kick", {"UserID": ""}))["ErrorCode"] == 70402
    assert (await api.call("kick", {}))["ErrorCode"] == 70402
    assert (await api.call("kick", {"UserID": 12}))["ErrorCode"] == 60015


async def test_kicked_non_admin_gets_70005_before_70403(client, server_app, app) -> None:
    user = uid()
    await Api(client, app).call("account_import", {"UserID": user})
    old = sign(app, user, now=int(time.time()) - 5)
    resp = await client.post(CHECK, params=query(app, identifier=user, sig=old), content=b"{}")
    assert resp.json()["ErrorCode"] == 70403
    await Api(client, app).call("kick", {"UserID": user})
    resp = await client.post(CHECK, params=query(app, identifier=user, sig=old), content=b"{}")
    assert resp.json()["ErrorCode"] == 70005
