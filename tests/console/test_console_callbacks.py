"""The console's Callbacks page (issue 13, item 3; docs/protocol.md §11.3).

The settings endpoint (/_timserver/console/callback: console token; the token write-only) in
process; then, in Chromium on a live server, a callback URL set from the page pointing at a real
loopback receiver, a login, and the delivery seen in the page with the receiver's status and
answer. Screenshots: docs/screenshots/callbacks-800.png and -1400.png.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from console_support import LIVE_APP, TOKEN
from support import KEY, Api, LiveServer, make_app, query, uid

from timserver import usersig
from timserver.server.console import TOKEN_HEADER
from timserver.testing import CallbackReceiver

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AUTH = {TOKEN_HEADER: TOKEN}
SETTINGS = "/_timserver/console/callback"


def answer(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def ok(resp: httpx.Response) -> dict:
    body = answer(resp)
    assert body["ErrorCode"] == 0, body
    return body


# --- the settings endpoint, in process -------------------------------------------------------------


async def test_callback_settings_need_the_token_and_never_show_it(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000401)
    secret = f"tok-{uid()}"
    for headers in ({}, {TOKEN_HEADER: "wrong-token-wrong-token"}):
        assert answer(await console.get(SETTINGS, params={"app": app.sdkappid},
                                         headers=headers))["ErrorCode"] == 60004
        assert answer(await console.post(SETTINGS, headers=headers, json={
            "SDKAppID": app.sdkappid, "Url": "http://127.0.0.1:9/cb"}))["ErrorCode"] == 60004
    assert (await console.asgi.state.storage.get_app(app.sdkappid)).callback is None
    # an admin UserSig is not enough either: these settings are the operator's
    q = query(app)
    signed = {k: q[k] for k in ("sdkappid", "identifier", "usersig")}
    assert answer(await console.post(SETTINGS, params=signed, json={
        "SDKAppID": app.sdkappid, "Url": "http://127.0.0.1:9/cb"}))["ErrorCode"] == 60004

    view = ok(await console.get(SETTINGS, params={"app": app.sdkappid}, headers=AUTH))
    assert view["Callback"] is None and view["Edition"] == "developer"
    assert view["Commands"] == ["State.StateChange", "Profile.CallbackPortraitSet"]

    saved = await console.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Url": "http://127.0.0.1:9/cb?x=1", "Token": secret,
        "Commands": ["State.StateChange"]})
    assert secret not in saved.text
    assert ok(saved)["Callback"] == {"Url": "http://127.0.0.1:9/cb?x=1", "Token": True,
                                     "Commands": ["State.StateChange"]}
    stored = (await console.asgi.state.storage.get_app(app.sdkappid)).callback
    assert (stored.url, stored.token, stored.commands) == (
        "http://127.0.0.1:9/cb?x=1", secret, ("State.StateChange",))
    for read in (await console.get(SETTINGS, params={"app": app.sdkappid}, headers=AUTH),
                 await console.get("/_timserver/callbacks", params=signed)):
        assert secret not in read.text and ok(read)["Callback"]["Token"] is True

    # without Token the one set stays; with Commands absent the ones on stay
    ok(await console.post(SETTINGS, headers=AUTH, json={"SDKAppID": app.sdkappid,
                                                         "Url": "http://127.0.0.1:9/other"}))
    stored = (await console.asgi.state.storage.get_app(app.sdkappid)).callback
    assert (stored.url, stored.token, stored.commands) == (
        "http://127.0.0.1:9/other", secret, ("State.StateChange",))
    # null removes it
    view = ok(await console.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Url": "http://127.0.0.1:9/other", "Token": None}))
    assert view["Callback"]["Token"] is False
    assert (await console.asgi.state.storage.get_app(app.sdkappid)).callback.token is None
    # Clear forgets it all
    assert ok(await console.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Clear": True}))["Callback"] is None
    assert (await console.asgi.state.storage.get_app(app.sdkappid)).callback is None


@pytest.mark.parametrize("body", [
    {"Url": "ftp://127.0.0.1/cb"},
    {"Url": "http:///no-host"},
    {"Url": "http://127.0.0.1/cb", "Commands": ["Group.CallbackAfterNewMember"]},
    {"Url": "http://127.0.0.1/cb", "Commands": []},
    {"Url": "http://127.0.0.1/cb", "Commands": "State.StateChange"},
    {"Url": "http://127.0.0.1/cb", "Token": ""},
    {"Url": "http://127.0.0.1/cb", "Token": 5},
    {"Url": "http://127.0.0.1/cb", "Tokn": "x"},
    {"Token": "abc"},
    {"Clear": True, "Url": "http://127.0.0.1/cb"},
    {"AllowDelete": "yes"},
    {},
])
async def test_bad_callback_settings_are_70402_and_change_nothing(console, body) -> None:
    app = await make_app(console.asgi, sdkappid=1400000402)
    resp = answer(await console.post(SETTINGS, headers=AUTH,
                                     json={"SDKAppID": app.sdkappid, **body}))
    assert resp["ErrorCode"] == 70402, resp
    assert (await console.asgi.state.storage.get_app(app.sdkappid)).callback is None


async def test_off_loopback_the_settings_endpoint_is_not_there(make_console) -> None:
    lan = await make_console(base_url="http://10.0.0.5")
    app = await make_app(lan.asgi, sdkappid=1400000404)
    assert answer(await lan.get(SETTINGS, params={"app": app.sdkappid},
                                headers=AUTH))["ErrorCode"] == 60009
    assert answer(await lan.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": app.sdkappid, "Url": "http://127.0.0.1:9/cb"}))["ErrorCode"] == 60009
    assert (await lan.asgi.state.storage.get_app(app.sdkappid)).callback is None


async def test_an_unknown_app_is_60006(console) -> None:
    assert answer(await console.get(SETTINGS, params={"app": 1400000499},
                                    headers=AUTH))["ErrorCode"] == 60006
    assert answer(await console.get(SETTINGS, headers=AUTH))["ErrorCode"] == 70402
    assert answer(await console.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": 1400000499, "Clear": True}))["ErrorCode"] == 60006


async def test_allow_delete_switches_account_delete_on_for_a_pro_app(console) -> None:
    app = await make_app(console.asgi, edition="pro", sdkappid=1400000403)
    api = Api(console, app)
    user = uid()
    await api.call("account_import", {"UserID": user})
    refused = await api.call("account_delete", {"DeleteItem": [{"UserID": user}]})
    assert refused["ErrorCode"] == 71000, refused
    view = ok(await console.post(SETTINGS, headers=AUTH, json={"SDKAppID": app.sdkappid,
                                                                "AllowDelete": True}))
    assert (view["Edition"], view["AllowDelete"], view["Callback"]) == ("pro", True, None)
    deleted = await api.call("account_delete", {"DeleteItem": [{"UserID": user}]})
    assert deleted["ErrorCode"] == 0 and deleted["ResultItem"][0]["ResultCode"] == 0, deleted
    assert ok(await console.post(SETTINGS, headers=AUTH, json={
        "SDKAppID": app.sdkappid, "AllowDelete": False}))["AllowDelete"] is False


# --- in Chromium, with a real receiver ---------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A loopback HTTP receiver of callbacks: /fail answers 500, anything else 200 + JSON."""
    with CallbackReceiver(modes={"fail": "fail"}) as r:
        yield r


def admin(server: LiveServer, path: str, body: Any) -> dict:
    sig = usersig.generate(LIVE_APP, KEY, "administrator", 3600, now=int(time.time()))
    return httpx.post(f"{server.base_url}{path}?sdkappid={LIVE_APP}&identifier=administrator"
                      f"&usersig={sig}&random=7&contenttype=json",
                      content=json.dumps(body), timeout=10).json()


def shoot(page: Any, name: str) -> None:
    """docs/screenshots/{name}-800.png and -1400.png; at 800 px nothing may stick out."""
    for width in (800, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name}: the page is {overflow} px wide at {width} px"
        clipped = page.evaluate("""() => [...document.querySelectorAll('.table-wrap')]
            .filter((w) => w.offsetParent && w.scrollWidth > w.clientWidth + 1).length""")
        assert clipped == 0, f"{name}: a table is cut off at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1360, "height": 900})


def test_a_login_shows_its_delivery_in_the_callbacks_view(page: Any, live_console: LiveServer,
                                                          receiver: CallbackReceiver) -> None:
    secret = f"cbtok-{uid()}"
    user = uid("cb")
    assert admin(live_console, "/v4/im_open_login_svc/account_import",
                 {"UserID": user})["ErrorCode"] == 0
    page.click("a[data-nav=callbacks]")
    page.wait_for_selector("#cb-url:not([disabled])")
    assert page.inner_text("#cb-on") == "Callbacks off"
    page.fill("#cb-url", f"{receiver.base_url}/im?from=timserver")
    page.fill("#cb-token", secret)
    page.click("#cb-save")
    page.wait_for_selector("#cb-message:has-text('Saved')")
    assert page.inner_text("#cb-on") == "Callbacks on"
    assert page.inner_text("#cb-token-state") == "Token set"
    assert page.input_value("#cb-token") == ""
    assert secret not in page.content()
    settings = httpx.get(f"{live_console.base_url}{SETTINGS}?app={LIVE_APP}", headers=AUTH)
    assert secret not in settings.text and settings.json()["Callback"]["Token"] is True

    assert admin(live_console, "/_timserver/login",
                 {"UserID": user, "Platform": "Android"})["ErrorCode"] == 0
    row = page.locator("#cb-rows tr[data-outcome=delivered]", has_text=user)
    row.wait_for()
    text = row.inner_text()
    assert "State.StateChange" in text and "200" in text and " ms" in text
    assert "Sign=" not in text and f"{receiver.base_url}/im?from=timserver" in text
    # what the receiver got: the login, signed with the token
    got = receiver.received[-1]
    path, params, body = got.path, parse_qs(got.raw_query), got.body
    assert path == "/im" and params["CallbackCommand"] == ["State.StateChange"]
    assert params["OptPlatform"] == ["Android"] and params["SdkAppid"] == [str(LIVE_APP)]
    assert params["Sign"] == [hashlib.sha256(
        f"{secret}{params['RequestTime'][0]}".encode()).hexdigest()]
    assert body["Info"] == {"Action": "Login", "To_Account": user, "Reason": "Register"}

    # a receiver that fails: status and error shown (the token set stays)
    page.evaluate("document.getElementById('cb-message').replaceChildren()")
    page.fill("#cb-url", f"{receiver.base_url}/fail")
    page.click("#cb-save")
    page.wait_for_selector("#cb-message:has-text('signed with the token')")
    assert httpx.get(f"{live_console.base_url}{SETTINGS}?app={LIVE_APP}",
                     headers=AUTH).json()["Callback"]["Url"] == f"{receiver.base_url}/fail"
    assert admin(live_console, "/_timserver/logout", {"UserID": user})["ErrorCode"] == 0
    failed = page.locator("#cb-rows tr[data-outcome=failed]", has_text=user)
    failed.wait_for()
    assert "500" in failed.inner_text() and "HTTP 500" in failed.inner_text()
    assert receiver.received[-1].path == "/fail" and receiver.received[-1].body["Info"]["Action"] == "Logout"

    row.click()
    detail = page.locator("#cb-detail")
    detail.wait_for()
    assert user in page.inner_text("#cb-detail-body")
    assert '"Action": "Login"' in page.inner_text("#cb-detail-body")
    assert '"ActionStatus": "OK"' in page.inner_text("#cb-detail-answer")
    assert "delivered" in page.inner_text("#cb-detail-fields")
    shoot(page, "callbacks")

    failed.click()
    page.wait_for_selector("#cb-detail-answer:has-text('receiver broke')")
    assert "HTTP 500" in page.inner_text("#cb-detail-fields")

    # off: no more deliveries
    page.click("#cb-clear")
    page.click("#confirm-ok")
    page.wait_for_selector("#cb-on:has-text('Callbacks off')")
    before = len(receiver.received)
    assert admin(live_console, "/_timserver/login",
                 {"UserID": user, "Platform": "Web"})["ErrorCode"] == 0
    time.sleep(0.5)
    assert len(receiver.received) == before
    assert httpx.get(f"{live_console.base_url}{SETTINGS}?app={LIVE_APP}",
                     headers=AUTH).json()["Callback"] is None


def test_allow_delete_is_switched_from_the_page(page: Any, live_console: LiveServer) -> None:
    page.click("a[data-nav=callbacks]")
    page.wait_for_selector("#cb-allow-delete:not([disabled])")
    assert "developer app always deletes" in page.inner_text("#cb-delete-text")
    assert not page.is_checked("#cb-allow-delete")
    page.check("#cb-allow-delete")
    page.wait_for_selector("#cb-message:has-text('switched on')")
    read = httpx.get(f"{live_console.base_url}{SETTINGS}?app={LIVE_APP}", headers=AUTH).json()
    assert read["AllowDelete"] is True
    page.uncheck("#cb-allow-delete")
    page.wait_for_selector("#cb-message:has-text('switched off')")
    read = httpx.get(f"{live_console.base_url}{SETTINGS}?app={LIVE_APP}", headers=AUTH).json()
    assert read["AllowDelete"] is False


def test_without_the_token_the_settings_are_read_only(page: Any, live_console: LiveServer,
                                                      receiver: CallbackReceiver) -> None:
    """The key typed in the page signs admin calls: deliveries are listed, settings not edited."""
    from playwright.sync_api import expect

    assert httpx.post(f"{live_console.base_url}{SETTINGS}", headers=AUTH, json={
        "SDKAppID": LIVE_APP, "Url": f"{receiver.base_url}/ro"}).json()["ErrorCode"] == 0
    page.click("#token-open")
    page.click("#token-forget")
    page.wait_for_selector("#session-status:has-text('No console token')")
    page.fill("#sdkappid", str(LIVE_APP))
    page.fill("#key", KEY)
    page.dispatch_event("#key", "change")
    page.click("a[data-nav=callbacks]")
    expect(page.locator("#cb-url")).to_have_value(f"{receiver.base_url}/ro")
    assert page.is_disabled("#cb-url") and page.is_disabled("#cb-save")
    assert "needs the console token" in page.inner_text("#cb-note")
    user = uid("ro")
    assert admin(live_console, "/v4/im_open_login_svc/account_import",
                 {"UserID": user})["ErrorCode"] == 0
    assert admin(live_console, "/_timserver/login",
                 {"UserID": user, "Platform": "Mac"})["ErrorCode"] == 0
    page.locator("#cb-rows tr[data-outcome=delivered]", has_text=user).wait_for()
    httpx.post(f"{live_console.base_url}{SETTINGS}", headers=AUTH,
               json={"SDKAppID": LIVE_APP, "Clear": True})
