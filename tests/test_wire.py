"""The REST framework in process: the check order of docs/protocol.md §4, the envelope, headers."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from support import ADMIN, Api, make_app, query, sign, uid

from timserver import usersig
from timserver.protocol.errors import CATALOGUE

CHECK = "/v4/im_open_login_svc/account_check"
BODY = b'{"CheckItem":[{"UserID":"administrator"}]}'


def assert_fail(resp: httpx.Response, code: int) -> dict:
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    data = resp.json()
    assert list(data) == ["ActionStatus", "ErrorInfo", "ErrorCode"], data
    assert data["ActionStatus"] == "FAIL" and data["ErrorCode"] == code, data
    assert isinstance(data["ErrorInfo"], str) and len(data["ErrorInfo"]) > 10
    return data


async def test_ok_envelope_and_headers(client, app) -> None:
    resp = await client.post(CHECK, params=query(app), content=BODY)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["access-control-allow-methods"] == "POST"
    assert resp.headers["access-control-allow-headers"] == "X-Requested-With"
    assert resp.content == (b'{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":'
                            b'[{"UserID":"administrator","ResultCode":0,"ResultInfo":"",'
                            b'"AccountStatus":"Imported"}]}')


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain",
                                          "application/x-www-form-urlencoded"])
async def test_no_particular_content_type_is_required(client, app, content_type) -> None:
    headers = {"content-type": content_type} if content_type else {}
    resp = await client.post(CHECK, params=query(app), content=BODY, headers=headers)
    assert resp.json()["ActionStatus"] == "OK"


# --- step 1: method ---------------------------------------------------------------------------

async def test_get_with_a_body_is_served_like_post(client, app) -> None:
    resp = await client.request("GET", CHECK, params=query(app), content=BODY)
    assert resp.json()["ResultItem"][0]["AccountStatus"] == "Imported"


async def test_get_without_body_is_60003(client, app) -> None:
    assert_fail(await client.get(CHECK, params=query(app)), 60003)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_60008_even_on_unknown_paths(client, app, method) -> None:
    assert_fail(await client.request(method, CHECK, params=query(app), content=BODY), 60008)
    assert_fail(await client.request(method, "/v4/nope/nope", content=BODY), 60008)


async def test_options_preflight_gets_cors(client) -> None:
    resp = await client.options(CHECK, headers={
        "Origin": "http://example.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert "content-type" in resp.headers["access-control-allow-headers"]


# --- step 2: command --------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/v4/openim/sendmsg", "/v4/im_open_login_svc/nope", "/v4/nope/account_check",
    "/v4/im_open_login_svc/Account_Check", "/v3/im_open_login_svc/account_check",
    "/v4/im_open_login_svc/account_check/extra", "/", "/v4", "/anything/at/all",
])
async def test_unknown_resource_is_60009_before_any_other_check(client, path) -> None:
    assert_fail(await client.post(path, content=b"not json"), 60009)


# --- step 3: sdkappid -------------------------------------------------------------------------

async def test_sdkappid_missing_or_empty_is_60012(client, app) -> None:
    assert_fail(await client.post(CHECK, params=query(app, sdkappid=None), content=BODY), 60012)
    assert_fail(await client.post(CHECK, params=query(app, sdkappid=""), content=BODY), 60012)


@pytest.mark.parametrize("value", ["abc", "-1400000000", "+1400000000", " 1400000000", "0x10",
                                   "1400000000.0", "1e9", "99999999999999999999999", "1"])
async def test_sdkappid_not_digits_or_unknown_is_60006(client, app, value) -> None:
    assert_fail(await client.post(CHECK, params=query(app, sdkappid=value), content=BODY), 60006)


async def test_sdkappid_leading_zeros_are_allowed(client, app) -> None:
    resp = await client.post(CHECK, params=query(app, sdkappid="00" + str(app.sdkappid)),
                             content=BODY)
    assert resp.json()["ActionStatus"] == "OK"


async def test_parameter_names_are_case_sensitive(client, app) -> None:
    params = query(app)
    params["SdkAppId"] = params.pop("sdkappid")
    assert_fail(await client.post(CHECK, params=params, content=BODY), 60012)


# --- step 4: identifier and usersig -----------------------------------------------------------

async def test_identifier_missing_or_empty_and_usersig_missing_are_60004(client, app) -> None:
    params = query(app)
    del params["identifier"]
    assert_fail(await client.post(CHECK, params=params, content=BODY), 60004)
    params["identifier"] = ""
    assert_fail(await client.post(CHECK, params=params, content=BODY), 60004)
    assert_fail(await client.post(CHECK, params=query(app, usersig=None), content=BODY), 60004)


async def test_usersig_empty_is_70002(client, app) -> None:
    assert_fail(await client.post(CHECK, params=query(app, usersig=""), content=BODY), 70002)


# --- step 5: random and contenttype -----------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", "x", "-1", "4294967296", "1.5", " 1", "１"])
async def test_bad_random_is_60002(client, app, value) -> None:
    assert_fail(await client.post(CHECK, params=query(app, random=value), content=BODY), 60002)


@pytest.mark.parametrize("value", ["0", "4294967295", "0004294967295"])
async def test_random_bounds(client, app, value) -> None:
    resp = await client.post(CHECK, params=query(app, random=value), content=BODY)
    assert resp.json()["ActionStatus"] == "OK"


@pytest.mark.parametrize("value", [None, "", "JSON", "xml", "json "])
async def test_bad_contenttype_is_60002(client, app, value) -> None:
    assert_fail(await client.post(CHECK, params=query(app, contenttype=value), content=BODY),
                60002)


# --- step 6: the UserSig, in order -----------------------------------------------------------

async def test_usersig_refusals(client, app) -> None:
    other = await make_app(client._transport.app, sdkappid=1400000099)
    cases = {
        70003: "garbage",
        70014: sign(other),  # valid for another app
        70013: sign(app, "someone_else"),
        70009: usersig.generate(app.sdkappid, "f" * 64, ADMIN, now=int(time.time())),
        70001: sign(app, expire=10, now=int(time.time()) - 100),
    }
    for code, sig in cases.items():
        assert_fail(await client.post(CHECK, params=query(app, usersig=sig), content=BODY), code)


async def test_sig_for_another_identifier_is_checked_before_admin(client, app) -> None:
    # identifier is not an admin, and the sig is someone else's: the sig check comes first.
    params = query(app, identifier="not_admin", sig=sign(app, ADMIN))
    assert_fail(await client.post(CHECK, params=params, content=BODY), 70013)


# --- step 7: admin ----------------------------------------------------------------------------

async def test_non_admin_is_70403(client, app) -> None:
    user = uid()
    assert_fail(await client.post(CHECK, params=query(app, identifier=user), content=BODY), 70403)


# --- step 8/9 ordering ------------------------------------------------------------------------

async def test_auth_failures_come_before_body_errors(client, app) -> None:
    assert_fail(await client.post(CHECK, params=query(app, usersig="garbage"), content=b"{"),
                70003)
    assert_fail(await client.post(CHECK, params=query(app, random="x"), content=b"{"), 60002)


async def test_rate_limit_comes_before_the_body(client, server_app) -> None:
    app = await make_app(server_app, unlimited=False)
    app = await server_app.state.storage.update_app(app.sdkappid, limit=("account_check", 2))
    codes = []
    for _ in range(4):
        resp = await client.post(CHECK, params=query(app), content=b"not json")
        codes.append(resp.json()["ErrorCode"])
    assert codes == [60003, 60003, 60007, 60007]


# --- step 9: the body -------------------------------------------------------------------------

@pytest.mark.parametrize("body,code", [
    (b"", 60003), (b"{", 60003), (b"\xff\xfe{}", 60003), (b"nul", 60003),
    (b'{"CheckItem":[{"UserID":"\xff\xfe"}]}', 60003),  # invalid UTF-8 inside a string
    (b'{"CheckItem":[{"UserID":"\xc0\xaf"}]}', 60003),  # overlong encoding
    (b'{"CheckItem":[{"UserID":"\\ud800"}]}', 60003),  # lone surrogate escape
    (b'{"CheckItem":[{"UserID":"a"}]} x', 60003),
    (b"[" * 100_000, 60003),  # nested too deeply
    (b"[]", 70402), (b"123", 70402), (b'"x"', 70402), (b"null", 70402), (b"{}", 70402),
    (b'{"CheckItem":{}}', 70402), (b'{"CheckItem":[]}', 70402), (b'{"CheckItem":"a"}', 70402),
    (b'{"CheckItem":[1]}', 70402), (b'{"CheckItem":[{}]}', 70402),
    (b'{"CheckItem":[{"UserID":null}]}', 70402), (b'{"CheckItem":[{"UserID":true}]}', 70402),
    (b'{"CheckItem":[{"UserID":["a"]}]}', 70402), (b'{"CheckItem":[{"UserID":{"a":1}}]}', 70402),
    (b'{"CheckItem":[{"UserID":123}]}', 60015), (b'{"CheckItem":[{"UserID":1.5}]}', 60015),
    (b'{"CheckItem":[{"UserID":"a"},{"UserID":7}]}', 60015),
])
async def test_body_rules(api, body, code) -> None:
    data = await api.call("account_check", body)
    assert data["ErrorCode"] == code, data
    assert data["ActionStatus"] == "FAIL" and data["ErrorInfo"]


async def test_too_many_items_is_70402(api) -> None:
    body = {"CheckItem": [{"UserID": f"u{i}"} for i in range(101)]}
    assert (await api.call("account_check", body))["ErrorCode"] == 70402
    body = {"CheckItem": [{"UserID": f"u{i}"} for i in range(100)]}
    assert (await api.call("account_check", body))["ErrorCode"] == 0


async def test_body_over_one_mib_is_60008(api) -> None:
    pad = "x" * (1024 * 1024)
    data = await api.call("account_check", json.dumps({"CheckItem": [{"UserID": "a"}],
                                                       "pad": pad}).encode())
    assert data["ErrorCode"] == 60008
    just_under = b'{"CheckItem":[{"UserID":"a"}],"pad":"' + b"x" * (1024 * 1024 - 60) + b'"}'
    assert len(just_under) <= 1024 * 1024
    assert (await api.call("account_check", just_under))["ErrorCode"] == 0


async def test_unknown_fields_are_ignored(api) -> None:
    data = await api.call("account_check", {"CheckItem": [{"UserID": "a", "x": 1}], "More": 2})
    assert data["ErrorCode"] == 0


def test_every_code_in_the_catalogue_has_a_sentence() -> None:
    for spec in CATALOGUE.values():
        assert spec.meaning.endswith(".") and len(spec.meaning) > 15


async def test_cross_app_isolation(client, server_app, app) -> None:
    other = await make_app(server_app, sdkappid=1400000077)
    user = uid()
    assert (await Api(client, app).call("account_import", {"UserID": user}))["ErrorCode"] == 0
    data = await Api(client, other).call("account_check", {"CheckItem": [{"UserID": user}]})
    assert data["ResultItem"][0]["AccountStatus"] == "NotImported"
    # app's admin sig does not open the other app, even with the same admin name
    params = query(other, sig=sign(app))
    assert_fail(await client.post(CHECK, params=params, content=BODY), 70014)
