"""The console's access model and the /_timserver/ extension endpoints, over the ASGI app.

The local address a request arrived on is the base URL's host (ASGI ``server``), so
``http://127.0.0.1`` is a loopback connection and ``http://10.0.0.5`` a LAN one.
"""

from __future__ import annotations

import base64
import json
import time
import zlib

import httpx
import pytest
from console_support import TOKEN
from support import Api, make_app, query, sign, uid

from timserver import usersig
from timserver.server.console import TOKEN_HEADER, check_bind, console_url

pytestmark = pytest.mark.slow

AUTH = {TOKEN_HEADER: TOKEN}


def envelope(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    body = resp.json()
    assert list(body)[:3] in (["ActionStatus", "ErrorCode", "ErrorInfo"],
                              ["ActionStatus", "ErrorInfo", "ErrorCode"])
    return body


def assert_fail(resp: httpx.Response, code: int) -> dict:
    body = envelope(resp)
    assert (body["ActionStatus"], body["ErrorCode"]) == ("FAIL", code), body
    assert body["ErrorInfo"]
    return body


def admin_params(app, identifier: str | None = None, sig: str | None = None) -> dict:
    q = query(app, identifier=identifier, sig=sig)
    return {k: q[k] for k in ("sdkappid", "identifier", "usersig")}


# --- where the console answers --------------------------------------------------------------


async def test_console_is_served_on_loopback_with_a_strict_csp(console) -> None:
    page = await console.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http://" not in page.text.replace("http://www.qq.com", "")  # no external asset
    assert 'src="static/console.js"' in page.text
    js = await console.get("/console/static/console.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    home = await console.get("/")
    assert home.status_code == 307 and home.headers["location"] == "/console/"
    assert (await console.get("/console")).headers["location"] == "/console/"


async def test_a_post_to_root_is_still_the_api_answer(console) -> None:
    assert_fail(await console.post("/", content=b"{}"), 60009)
    assert_fail(await console.get("/console/static/nope.js"), 60009)


@pytest.mark.parametrize("path", ["/console/", "/", "/_timserver/console/meta",
                                  "/console/static/console.js"])
async def test_console_is_invisible_from_a_non_loopback_address(make_console, path) -> None:
    lan = await make_console("http://10.0.0.5")
    assert_fail(await lan.get(path), 60009)


async def test_dns_rebinding_host_is_refused_on_loopback(console) -> None:
    assert_fail(await console.get("/console/", headers={"host": "evil.example"}), 60009)
    assert_fail(await console.get("/_timserver/console/apps",
                                  headers={"host": "evil.example:8080", **AUTH}), 60009)
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "app.localhost"):
        assert (await console.get("/console/", headers={"host": host})).status_code == 200


async def test_console_bind_opens_the_console_on_that_address(make_console) -> None:
    lan = await make_console("http://10.0.0.5", console_bind="10.0.0.5")
    assert (await lan.get("/console/")).status_code == 200
    other = await make_console("http://10.0.0.6", console_bind="10.0.0.5")
    assert_fail(await other.get("/console/"), 60009)
    anywhere = await make_console("http://192.168.7.7", console_bind="0.0.0.0")
    assert (await anywhere.get("/console/")).status_code == 200


async def test_no_console_turns_every_console_route_off(make_console) -> None:
    off = await make_console(console=False)
    for path in ("/console/", "/", "/_timserver/console/meta", "/_timserver/console/apps"):
        assert_fail(await off.get(path, headers=AUTH), 60009)


def test_console_bind_must_be_an_ip_address_and_the_link_follows_it() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        check_bind("example.com")
    assert check_bind("::") == "::"
    link = console_url("127.0.0.1", 8080, None, "tok")
    assert link == "http://127.0.0.1:8080/console/#token=tok"
    assert console_url("0.0.0.0", 80, None, "t") == "http://127.0.0.1:80/console/#token=t"
    assert console_url("192.168.1.2", 80, None, "t") is None  # loopback only, not listened on
    assert console_url("0.0.0.0", 80, "192.168.1.2", "t") == "http://192.168.1.2:80/console/#token=t"
    assert console_url("::", 80, "::1", "t") == "http://[::1]:80/console/#token=t"


# --- the console token --------------------------------------------------------------------------


async def test_apps_and_signing_need_the_token_and_never_show_a_key(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000100)
    for headers in ({}, {TOKEN_HEADER: "wrong-token-wrong-token"}):
        assert_fail(await console.get("/_timserver/console/apps", headers=headers), 60004)
        body = assert_fail(await console.post("/_timserver/console/usersig", headers=headers,
                                              json={"SDKAppID": app.sdkappid,
                                                    "Identifier": "administrator"}), 60004)
        assert "UserSig" not in body
    listed = await console.get("/_timserver/console/apps", headers=AUTH)
    assert envelope(listed)["Apps"] == [{"SDKAppID": app.sdkappid, "Edition": "developer",
                                         "Admins": ["administrator"], "Accounts": 1}]
    assert app.key not in listed.text
    meta = envelope(await console.get("/_timserver/console/meta"))
    assert meta["Token"] is False and meta["TokenConfigured"] is True
    assert app.key not in json.dumps(meta)


async def test_the_server_signs_a_valid_usersig_for_a_hosted_app(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000101)
    body = envelope(await console.post("/_timserver/console/usersig", headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Identifier": "someone", "Expire": 600}))
    doc = usersig.verify(body["UserSig"], sdkappid=app.sdkappid, identifier="someone",
                         key=app.key, now=int(time.time()))
    assert doc.expire == 600
    resp = await console.post("/_timserver/console/usersig", headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Identifier": "x"})
    assert resp.headers["cache-control"] == "no-store"


async def test_a_server_without_token_signs_nothing(make_console) -> None:
    bare = await make_console(console_token=None)
    body = assert_fail(await bare.post("/_timserver/console/usersig", headers=AUTH,
                                       json={"SDKAppID": 1, "Identifier": "a"}), 60004)
    assert "without a console token" in body["ErrorInfo"]


@pytest.mark.parametrize("payload,code", [
    (b"", 60003),
    (b"{not json", 60003),
    (b"[1, 2]", 70402),
    (json.dumps({"SDKAppID": "1400000102", "Identifier": "a"}).encode(), 70402),
    (json.dumps({"SDKAppID": True, "Identifier": "a"}).encode(), 70402),
    (json.dumps({"SDKAppID": 1400000102}).encode(), 70402),
    (json.dumps({"SDKAppID": 1400000102, "Identifier": "a" * 33}).encode(), 70402),
    (json.dumps({"SDKAppID": 1400000102, "Identifier": "a", "Expire": 0}).encode(), 70402),
    (json.dumps({"SDKAppID": 1400000102, "Identifier": "a", "Expire": 10**12}).encode(), 70402),
    (json.dumps({"SDKAppID": 999, "Identifier": "a"}).encode(), 60006),
    (json.dumps({"SDKAppID": -5, "Identifier": "a"}).encode(), 60006),
    (json.dumps({"SDKAppID": 10**30, "Identifier": "a"}).encode(), 60006),
    (b"{" + b" " * 40_000 + b"}", 60008),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, 60003),
])
async def test_bad_sign_requests_get_envelopes(console, payload, code) -> None:
    await make_app(console.asgi, sdkappid=1400000102)
    assert_fail(await console.post("/_timserver/console/usersig", headers=AUTH,
                                   content=payload), code)


@pytest.mark.parametrize("method,path", [
    ("PUT", "/_timserver/console/usersig"), ("GET", "/_timserver/console/usersig"),
    ("POST", "/_timserver/console/meta"), ("DELETE", "/_timserver/accounts"),
    ("GET", "/_timserver/accounts/import"), ("PATCH", "/_timserver/journal"),
])
async def test_wrong_methods_get_60008(console, method, path) -> None:
    assert_fail(await console.request(method, path, headers=AUTH), 60008)


# --- explain ----------------------------------------------------------------------------------


def tamper(sig: str, **changes) -> str:
    """Re-pack a UserSig with some fields changed (and the old TLS.sig kept)."""
    raw = zlib.decompress(base64.b64decode(sig.translate(str.maketrans("*-_", "+/="))))
    doc = {**json.loads(raw), **changes}
    packed = zlib.compress(json.dumps(doc).encode())
    return base64.b64encode(packed).decode().translate(str.maketrans("+/=", "*-_"))


async def explain(console, sig: str, **extra) -> dict:
    body = envelope(await console.post("/_timserver/console/usersig/explain",
                                       json={"UserSig": sig, **extra}))
    assert body["ActionStatus"] == "OK"
    return body


async def test_explain_a_valid_and_a_tampered_usersig(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000103)
    good = sign(app, "alice")
    body = await explain(console, good)
    assert body["Valid"] is True and body["Hosted"] is True and body["Code"] == 0
    assert body["Document"]["TLS.identifier"] == "alice"
    assert "signature" in body["Checked"]

    longer = tamper(good, **{"TLS.expire": 10**8})
    body = await explain(console, longer)
    assert (body["Valid"], body["Code"], body["CodeName"]) == (False, 70009,
                                                               "USERSIG_VERIFY_FAILED")
    assert "signature does not match" in body["Reason"]
    assert body["Document"]["TLS.expire"] == 10**8

    body = await explain(console, good[:40] + "!" + good[41:])
    assert (body["Decoded"], body["Valid"], body["Code"]) == (False, False, 70003)
    assert body["Document"] is None and "base64" in body["Reason"]


async def test_explain_expired_kicked_mismatched_and_foreign_sigs(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000104)
    old = sign(app, "administrator", expire=10, now=int(time.time()) - 100)
    assert (await explain(console, old))["Code"] == 70001
    sig = sign(app, "administrator", now=int(time.time()) - 5)
    assert (await explain(console, sig, Identifier="bob"))["Code"] == 70013
    assert (await explain(console, sig, SDKAppID=1))["Code"] == 70014
    api = Api(console, app)
    assert (await api.call("kick", {"UserID": "administrator"}))["ErrorCode"] == 0
    kicked = await explain(console, sig)
    assert kicked["Code"] == 70005 and "kicked" in kicked["Reason"]
    foreign = usersig.generate(1500000000, "f" * 64, "x", now=int(time.time()))
    body = await explain(console, foreign)
    assert body["Valid"] is True and body["Hosted"] is False
    assert "not checked" in body["Checked"]


@pytest.mark.parametrize("payload", [{"UserSig": 5}, {"UserSig": "eJy", "SDKAppID": "1"},
                                     {"UserSig": "eJy", "Identifier": 3}, {}])
async def test_explain_bad_inputs_are_70402(console, payload) -> None:
    assert_fail(await console.post("/_timserver/console/usersig/explain", json=payload), 70402)


async def test_explain_of_a_huge_usersig_is_an_answer_not_a_crash(console) -> None:
    body = await explain(console, "A" * 20_000)
    assert body["Code"] == 70003 and "characters long" in body["Reason"]
    assert_fail(await console.post("/_timserver/console/usersig/explain",
                                   json={"UserSig": "A" * 40_000}), 60008)


# --- accounts --------------------------------------------------------------------------------


async def test_accounts_need_admin_auth(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000105)
    assert_fail(await console.get("/_timserver/accounts"), 60012)
    assert_fail(await console.get("/_timserver/accounts",
                                  params={"sdkappid": app.sdkappid}), 60004)
    q = admin_params(app)
    assert_fail(await console.get("/_timserver/accounts", params={**q, "usersig": ""}), 70002)
    assert_fail(await console.get("/_timserver/accounts", params={**q, "usersig": "x"}), 70003)
    user = uid()
    await Api(console, app).call("account_import", {"UserID": user})
    assert_fail(await console.get("/_timserver/accounts",
                                  params=admin_params(app, identifier=user)), 70403)
    assert_fail(await console.get("/_timserver/accounts", headers=AUTH), 60012)  # token ≠ auth


async def test_one_app_never_sees_another_apps_accounts(console) -> None:
    a = await make_app(console.asgi, sdkappid=1400000106)
    b = await make_app(console.asgi, sdkappid=1400000107)
    secret = uid("only_b")
    await Api(console, b).call("account_import", {"UserID": secret})
    listed = envelope(await console.get("/_timserver/accounts", params=admin_params(a)))
    assert [x["UserID"] for x in listed["Accounts"]] == ["administrator"]
    # a's admin UserSig presented for b's SDKAppID
    forged = {**admin_params(a), "sdkappid": str(b.sdkappid)}
    assert_fail(await console.get("/_timserver/accounts", params=forged), 70014)
    assert_fail(await console.post("/_timserver/accounts/delete", params=forged,
                                   json={"DeleteItem": [{"UserID": secret}]}), 70014)
    mine = envelope(await console.get("/_timserver/accounts", params=admin_params(b)))
    assert secret in [x["UserID"] for x in mine["Accounts"]]


async def test_import_list_delete_and_kick_follow_the_commands_rules(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000108)
    api = Api(console, app)
    q = admin_params(app)
    alice, bob = uid("alice"), uid("bob")
    body = envelope(await console.post("/_timserver/accounts/import", params=q, json={
        "AccountList": [{"UserID": alice, "Nick": "Alice"}, {"UserID": bob},
                        {"UserID": "x" * 40}, {"UserID": uid(), "Nick": "n" * 501}]}))
    assert body["Imported"] == 2
    assert len(body["FailAccounts"]) == 2
    reasons = [f["Reason"] for f in body["Failures"]]
    assert "bytes long" in reasons[0] and "Nick is 501 bytes" in reasons[1]
    check = await api.call("account_check", {"CheckItem": [{"UserID": alice}, {"UserID": bob}]})
    assert [r["AccountStatus"] for r in check["ResultItem"]] == ["Imported", "Imported"]
    listed = envelope(await console.get("/_timserver/accounts", params={**q, "prefix": "alice"}))
    assert [(x["UserID"], x["Nick"], x["IsAdmin"]) for x in listed["Accounts"]] == [
        (alice, "Alice", False)]
    assert listed["Total"] == 3

    assert_fail(await console.post("/_timserver/accounts/import", params=q,
                                   json={"AccountList": [{"UserID": 5}]}), 60015)
    assert_fail(await console.post("/_timserver/accounts/import", params=q,
                                   json={"AccountList": []}), 70402)
    assert_fail(await console.post("/_timserver/accounts/import", params=q, json={
        "AccountList": [{"UserID": uid()} for _ in range(101)]}), 70402)

    sig = sign(app, "administrator")
    assert envelope(await console.post("/_timserver/accounts/kick", params=q,
                                       json={"UserID": bob}))["ErrorCode"] == 0
    assert_fail(await console.post("/_timserver/accounts/kick", params=q,
                                   json={"UserID": uid()}), 70107)
    deleted = envelope(await console.post("/_timserver/accounts/delete", params=q, json={
        "DeleteItem": [{"UserID": alice}, {"UserID": "administrator"}, {"UserID": alice}]}))
    assert [r["ResultCode"] for r in deleted["ResultItem"]] == [0, 70402, 70107]
    check = await api.call("account_check", {"CheckItem": [{"UserID": alice}]}, sig=sig)
    assert check["ResultItem"][0]["AccountStatus"] == "NotImported"


async def test_an_import_over_the_trial_cap_says_so(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000118, edition="trial")
    q = admin_params(app)
    full = envelope(await console.post("/_timserver/accounts/import", params=q, json={
        "Accounts": [f"t{i:03d}" for i in range(100)]}))
    assert (full["Imported"], full["FailAccounts"]) == (100, [])
    over = envelope(await console.post("/_timserver/accounts/import", params=q,
                                       json={"AccountList": [{"UserID": "one_more"}]}))
    assert over["Imported"] == 0 and over["FailAccounts"] == ["one_more"]
    assert "70398" in over["Failures"][0]["Reason"]


async def test_an_import_says_why_each_account_failed_as_the_service_decided(console) -> None:
    """The reasons come from the service's own decision (not the rules asked again): a UserID
    deleted from a pro app a moment ago is refused for the 90-day ban, not the edition's cap."""
    app = await make_app(console.asgi, sdkappid=1400000128, edition="pro")
    app = await console.asgi.state.storage.update_app(app.sdkappid, allow_delete=True)
    q = admin_params(app)
    gone = uid("gone")
    assert envelope(await console.post("/_timserver/accounts/import", params=q,
                                       json={"Accounts": [gone]}))["Imported"] == 1
    envelope(await console.post("/_timserver/accounts/delete", params=q,
                                json={"DeleteItem": [{"UserID": gone}]}))
    body = envelope(await console.post("/_timserver/accounts/import", params=q, json={
        "AccountList": [{"UserID": gone}, {"UserID": "x" * 40}, {"UserID": gone},
                        {"UserID": uid(), "FaceUrl": "f" * 501}, {"UserID": uid("ok")}]}))
    assert body["Imported"] == 1 and {gone, "x" * 40} < set(body["FailAccounts"])
    reasons = {f["UserID"]: f["Reason"] for f in body["Failures"]}
    assert len(body["Failures"]) == len(body["FailAccounts"]) == 3
    assert "90 days" in reasons[gone] and "70399" in reasons[gone]
    assert "bytes long" in reasons["x" * 40]
    assert next(r for u, r in reasons.items() if u not in (gone, "x" * 40)).startswith("FaceUrl")


async def test_the_extension_endpoints_share_the_commands_rate_limit(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000109)
    app = await console.asgi.state.storage.update_app(app.sdkappid, limit=("account_delete", 1))
    q = admin_params(app)
    body = {"DeleteItem": [{"UserID": "nobody"}]}
    first = envelope(await console.post("/_timserver/accounts/delete", params=q, json=body))
    assert first["ResultItem"][0]["ResultCode"] == 70107
    assert_fail(await console.post("/_timserver/accounts/delete", params=q, json=body), 60007)
    # the /v4 command and the extension endpoint draw on one budget
    assert (await Api(console, app).call("account_delete", body))["ErrorCode"] == 60007


async def test_paging_walks_every_account_once(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000110)
    q = admin_params(app)
    names = sorted(f"page_{i:02d}" for i in range(23))
    envelope(await console.post("/_timserver/accounts/import", params=q,
                                json={"AccountList": [{"UserID": n} for n in names]}))
    seen, after, pages = [], "", 0
    while True:
        body = envelope(await console.get("/_timserver/accounts", params={
            **q, "prefix": "page_", "after": after, "limit": "10"}))
        seen += [a["UserID"] for a in body["Accounts"]]
        pages += 1
        if not body["Next"]:
            break
        after = body["Next"]
    assert seen == names and pages == 3


@pytest.mark.parametrize("params,code", [
    ({"limit": "0"}, 70402), ({"limit": "201"}, 70402), ({"limit": "ten"}, 70402),
    ({"prefix": "p" * 129}, 70402), ({"after": "a" * 129}, 70402),
    ({"prefix": "%ff"}, 70402), ({"pad": "x" * 17_000}, 60002),
])
async def test_bad_list_parameters_are_refused(console, params, code) -> None:
    app = await make_app(console.asgi, sdkappid=1400000111)
    qs = "&".join(f"{k}={v}" for k, v in {**admin_params(app), **params}.items())
    assert_fail(await console.get(f"/_timserver/accounts?{qs}"), code)


# --- the journal -------------------------------------------------------------------------------


async def test_journal_records_v4_calls_without_usersigs(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000112)
    api = Api(console, app)
    sig = sign(app)
    await api.call("account_check", {"CheckItem": [{"UserID": "administrator"}]}, sig=sig)
    await api.call("kick", {"UserID": uid()}, sig=sig)
    resp = await console.get("/_timserver/journal", params=admin_params(app, sig=sig))
    body = envelope(resp)
    entries = body["Entries"]
    assert [(e["Command"], e["ErrorCode"], e["SDKAppID"]) for e in entries] == [
        ("account_check", 0, app.sdkappid), ("kick", 70107, app.sdkappid)]
    check = entries[0]
    assert check["RequestBytes"] == len(b'{"CheckItem":[{"UserID":"administrator"}]}')
    assert check["ResponseBytes"] > 50 and check["LatencyMs"] > 0
    assert check["Identifier"] == "administrator" and check["Time"] <= time.time()
    assert sig not in resp.text and "usersig" not in resp.text.lower()
    assert body["Capacity"] == 1000


async def test_journal_counts_a_refused_body_by_its_declared_length(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000117)
    body = b'{"CheckItem":[{"UserID":"someone"}]}'
    resp = await console.post("/v4/im_open_login_svc/account_check", content=body,
                              params=query(app, sig="not-a-sig"))
    assert resp.json()["ErrorCode"] == 70003  # refused before the body was read
    entry = envelope(await console.get("/_timserver/console/journal", headers=AUTH))["Entries"][-1]
    assert (entry["ErrorCode"], entry["RequestBytes"]) == (70003, len(body))


async def test_journal_is_per_app_and_the_token_sees_all(console) -> None:
    a = await make_app(console.asgi, sdkappid=1400000113)
    b = await make_app(console.asgi, sdkappid=1400000114)
    await Api(console, a).call("account_check", {"CheckItem": [{"UserID": "x"}]})
    await console.post("/nowhere", content=b"{}")
    mine = envelope(await console.get("/_timserver/journal", params=admin_params(b)))
    assert mine["Entries"] == []
    everything = envelope(await console.get("/_timserver/console/journal", headers=AUTH))
    assert [(e["SDKAppID"], e["Path"]) for e in everything["Entries"]] == [
        (a.sdkappid, "/v4/im_open_login_svc/account_check"), (None, "/nowhere")]
    assert_fail(await console.get("/_timserver/console/journal"), 60004)


async def test_journal_ring_is_bounded_and_exports_ndjson(make_console) -> None:
    small = await make_console(journal_size=3)
    app = await make_app(small.asgi, sdkappid=1400000115)
    api = Api(small, app)
    for i in range(5):
        await api.call("account_check", {"CheckItem": [{"UserID": f"u{i}"}]})
    body = envelope(await small.get("/_timserver/journal", params=admin_params(app)))
    assert [e["Seq"] for e in body["Entries"]] == [3, 4, 5]
    after = envelope(await small.get("/_timserver/journal",
                                     params={**admin_params(app), "after": "4"}))
    assert [e["Seq"] for e in after["Entries"]] == [5]
    export = await small.get("/_timserver/journal",
                             params={**admin_params(app), "format": "ndjson"})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in export.headers["content-disposition"]
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [e["Seq"] for e in lines] == [3, 4, 5]
    assert all(e["Command"] == "account_check" for e in lines)
    assert_fail(await small.get("/_timserver/journal",
                                params={**admin_params(app), "format": "xml"}), 70402)
    assert_fail(await small.get("/_timserver/journal",
                                params={**admin_params(app), "limit": "4"}), 70402)


async def test_journal_cleans_odd_identifiers(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000116)
    await console.post("/v4/im_open_login_svc/account_check",
                       content=b"{}", params={"sdkappid": str(app.sdkappid),
                                              "identifier": "\x01" + "z" * 500, "usersig": "x",
                                              "random": "1", "contenttype": "json"})
    raw = await console.get(f"/v4/im_open_login_svc/account_check?sdkappid={app.sdkappid}"
                            "&identifier=%ff%fe&usersig=x&random=1&contenttype=json")
    assert raw.json()["ErrorCode"] == 70003
    entries = envelope(await console.get("/_timserver/console/journal",
                                         headers=AUTH))["Entries"]
    assert len(entries[0]["Identifier"]) == 128 and entries[0]["Identifier"][0] == "\ufffd"
    assert entries[1]["Identifier"] == "\ufffd\ufffd"


async def test_openapi_describes_the_extension_endpoints(console) -> None:
    from openapi_spec_validator import validate

    doc = (await console.get("/openapi.json")).json()
    validate(doc)
    for path in ("/_timserver/accounts", "/_timserver/accounts/import",
                 "/_timserver/accounts/delete", "/_timserver/accounts/kick",
                 "/_timserver/journal"):
        assert path in doc["paths"]
    assert not any(p.startswith("/_timserver/console") for p in doc["paths"])
