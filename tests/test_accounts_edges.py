"""The five commands' answers word for word: every ErrorInfo, ResultInfo and per-item field a
client reads (found by mutation testing, docs/testing.md)."""

from __future__ import annotations

import time

from support import ADMIN, Api, make_app, query, sign, uid

from timserver.protocol.errors import ACCOUNT_NOT_EXIST_INFO


def fail(code: int, info: str) -> dict:
    return {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}


OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}


async def test_account_import_answers(api, server_app) -> None:
    a = uid()
    assert await api.call("account_import", {"UserID": a, "Nick": "n", "FaceUrl": "f"}) == OK
    assert await api.call("account_import", {"UserID": ""}) == fail(
        70402, "Invalid parameters: UserID '' is invalid: it is empty.")
    assert await api.call("account_import", {"UserID": a, "FaceUrl": "x" * 501}) == fail(
        40601, "FaceUrl is 501 bytes long; at most 500 are allowed.")
    assert await api.call("account_import", {"UserID": a, "Nick": "\x00"}) == fail(
        40601, "Nick contains a NUL character (U+0000), which cannot be stored.")
    (acc,) = await server_app.state.storage.list_accounts(api.app.sdkappid, prefix=a, limit=1)
    assert (acc.nick, acc.face_url) == ("n", "f")  # a refused import changed nothing
    b = uid()
    assert await api.call("account_import", {"UserID": b}) == OK
    (acc,) = await server_app.state.storage.list_accounts(api.app.sdkappid, prefix=b, limit=1)
    assert (acc.nick, acc.face_url) == (None, None)


async def test_the_trial_cap_says_what_to_do(client, server_app) -> None:
    trial = Api(client, await make_app(server_app, edition="trial"))
    ids = [uid() for _ in range(99)]  # 100 with the admin... who does not count: 99 + 1 fit
    assert (await trial.call("multiaccount_import", {"Accounts": ids}))["FailAccounts"] == []
    last, over = uid(), uid()
    assert await trial.call("account_import", {"UserID": last}) == OK
    assert await trial.call("account_import", {"UserID": over}) == fail(
        70398, "Number of accounts over the limit: a trial app holds at most 100 accounts; "
               "delete some or upgrade the edition.")
    data = await trial.call("multiaccount_import", {"AccountList": [
        {"UserID": over, "Nick": "n"}, {"UserID": last, "Nick": "again"}]})
    assert data == {**OK, "FailAccounts": [over]}


async def test_multiaccount_import_lists_each_failure_once_in_order(api) -> None:
    good, bad = uid(), "x" * 33
    data = await api.call("multiaccount_import", {"Accounts": [bad, good, "", bad]})
    assert data == {**OK, "FailAccounts": [bad, ""]}
    data = await api.call("multiaccount_import", {"AccountList": [
        {"UserID": good, "Nick": "x" * 501}, {"UserID": uid()}, {"UserID": good, "Nick": "ok"}]})
    assert data == {**OK, "FailAccounts": [good]}


async def test_account_delete_answers(client, server_app) -> None:
    app = await make_app(server_app, admins=(ADMIN, "ops"))
    api = Api(client, app)
    a, missing = uid(), uid()
    await api.call("account_import", {"UserID": a})
    data = await api.call("account_delete", {"DeleteItem": [
        {"UserID": a}, {"UserID": "ops"}, {"UserID": "\x01"}, {"UserID": missing}]})
    assert data == {**OK, "ResultItem": [
        {"ResultCode": 0, "ResultInfo": "", "UserID": a},
        {"ResultCode": 70402, "UserID": "ops",
         "ResultInfo": "This UserID is an app admin; admin accounts cannot be deleted."},
        {"ResultCode": 70402, "UserID": "\x01",
         "ResultInfo": "UserID is invalid: it contains a control character."},
        {"ResultCode": 70107, "ResultInfo": ACCOUNT_NOT_EXIST_INFO, "UserID": missing}]}
    pro = Api(client, await make_app(server_app, edition="pro"))
    assert await pro.call("account_delete", {"DeleteItem": [{"UserID": a}]}) == fail(
        71000, "Account deletion failed: deletion is switched off for this pro-edition app "
               "(timserver app allow-delete N on switches it on); use kick to deactivate an "
               "account instead.")
    trial = Api(client, await make_app(server_app, edition="trial"))
    await trial.call("account_import", {"UserID": a})
    assert (await trial.call("account_delete", {"DeleteItem": [{"UserID": a}]}))[
        "ResultItem"] == [{"ResultCode": 0, "ResultInfo": "", "UserID": a}]


async def test_account_check_answers(api) -> None:
    a = uid()
    await api.call("account_import", {"UserID": a})
    data = await api.call("account_check", {"CheckItem": [
        {"UserID": a}, {"UserID": ""}, {"UserID": "nobody"}]})
    assert data == {**OK, "ResultItem": [
        {"UserID": a, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "Imported"},
        {"UserID": "", "ResultCode": 70402, "ResultInfo": "UserID is invalid: it is empty.",
         "AccountStatus": "NotImported"},
        {"UserID": "nobody", "ResultCode": 0, "ResultInfo": "", "AccountStatus": "NotImported"}]}


async def test_kick_answers(api) -> None:
    a, missing = uid(), uid()
    await api.call("account_import", {"UserID": a})
    assert await api.call("kick", {"UserID": a}) == OK
    assert await api.call("kick", {"UserID": missing}) == fail(
        70107, f"The UserID {missing!r} does not exist in this app: import it before kicking it.")
    assert await api.call("kick", {"UserID": "a" * 33}) == fail(
        70402, f"Invalid parameters: UserID {'a' * 33!r} is invalid: it is 33 bytes long in "
               "UTF-8; at most 32 are allowed.")


async def test_a_kick_is_stamped_with_the_app_s_own_clock(client, app, api) -> None:
    """With the app's clock moved 1000 s ahead, a UserSig signed 500 s ahead of the wall clock
    is in that app's past: a kick now refuses it (70005) before its 70403 of a non-admin."""
    user = uid()
    await api.call("account_import", {"UserID": user})
    moved = await client.post("/_timserver/clock", params=query(app), json={"Advance": 1000})
    assert moved.json()["ErrorCode"] == 0, moved.text
    try:
        ahead = sign(app, user, now=int(time.time()) + 500)
        url = "/v4/im_open_login_svc/account_check"
        resp = await client.post(url, params=query(app, identifier=user, sig=ahead), content=b"{}")
        assert resp.json()["ErrorCode"] == 70403
        assert await api.call("kick", {"UserID": user}) == OK
        resp = await client.post(url, params=query(app, identifier=user, sig=ahead), content=b"{}")
        assert resp.json()["ErrorCode"] == 70005
    finally:  # the PostgreSQL test database keeps clock offsets between tests (table meta)
        back = await client.post("/_timserver/clock", params=query(app), json={"Offset": 0})
        assert back.json()["ErrorCode"] == 0, back.text
