"""Login state on the console's Accounts page (issue 13, item 2; docs/protocol.md §11.2).

The accounts list carries each account's login state (read in production too); the page logs
devices in and out through the emulator's /_timserver/login and /_timserver/logout, which do not
exist without the emulator. In Chromium on a live server, the server's own
openim/query_online_status is asked over HTTP whether it agrees with what the page shows.
Screenshots: docs/screenshots/accounts-login-state-800.png and -1400.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import LIVE_APP, TOKEN, start_live_console
from support import KEY, Api, LiveServer, make_app, query, uid

from timserver import usersig

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def admin_params(app) -> dict:
    q = query(app)
    return {k: q[k] for k in ("sdkappid", "identifier", "usersig")}


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ErrorCode"] == 0, body
    return body


# --- the endpoints, in process ------------------------------------------------------------------


async def test_the_accounts_list_carries_each_accounts_login_state(console) -> None:
    app = await make_app(console.asgi, sdkappid=1400000301)
    alice, bob = uid("alice"), uid("bob")
    await Api(console, app).call("multiaccount_import", {"Accounts": [alice, bob]})
    q = admin_params(app)
    ok(await console.post("/_timserver/login", params=q, json={"UserID": alice,
                                                                 "Platform": "iPhone"}))
    ok(await console.post("/_timserver/login", params=q, json={"UserID": alice,
                                                                 "Platform": "Web"}))
    listed = {a["UserID"]: a for a in ok(await console.get("/_timserver/accounts",
                                                           params=q))["Accounts"]}
    assert listed[alice]["Status"] == "Online"
    assert sorted((d["Platform"], d["Status"]) for d in listed[alice]["Devices"]) == [
        ("Web", "Online"), ("iPhone", "Online")]
    assert all(d["InstId"] > 0 and d["LoginAt"] > 0 for d in listed[alice]["Devices"])
    assert (listed[bob]["Status"], listed[bob]["Devices"]) == ("Offline", [])
    assert listed["administrator"]["Status"] == "Offline"
    # a dropped connection: the mobile device stays reachable by push, the Web one goes
    ok(await console.post("/_timserver/disconnect", params=q, json={"UserID": alice}))
    again = {a["UserID"]: a for a in ok(await console.get("/_timserver/accounts",
                                                          params=q))["Accounts"]}
    assert again[alice]["Status"] == "PushOnline"
    assert [(d["Platform"], d["Status"]) for d in again[alice]["Devices"]] == [
        ("iPhone", "PushOnline")]


async def test_without_the_emulator_state_is_read_but_never_changed(make_console) -> None:
    console = await make_console(emulator=False)
    app = await make_app(console.asgi, sdkappid=1400000302)
    user = uid()
    await Api(console, app).call("account_import", {"UserID": user})
    meta = ok(await console.get("/_timserver/console/meta"))
    assert meta["Emulator"] is False and "iPhone" in meta["Platforms"]
    q = admin_params(app)
    for path in ("/_timserver/login", "/_timserver/logout", "/_timserver/disconnect"):
        body = (await console.post(path, params=q, json={"UserID": user,
                                                         "Platform": "iPhone"})).json()
        assert body["ErrorCode"] == 60009, (path, body)
    listed = ok(await console.get("/_timserver/accounts", params=q))["Accounts"]
    assert {a["UserID"]: a["Status"] for a in listed}[user] == "Offline"
    emulated = await make_console()
    assert ok(await emulated.get("/_timserver/console/meta"))["Emulator"] is True


# --- in Chromium -----------------------------------------------------------------------------


def v4(server: LiveServer, path: str, body: Any) -> dict:
    sig = usersig.generate(LIVE_APP, KEY, "administrator", 3600, now=int(time.time()))
    return httpx.post(f"{server.base_url}/v4/{path}?sdkappid={LIVE_APP}&identifier=administrator"
                      f"&usersig={sig}&random=7&contenttype=json",
                      content=json.dumps(body), timeout=10).json()


def online(server: LiveServer, user: str) -> tuple[str, list[tuple[str, str]]]:
    """What the server itself answers: query_online_status over HTTP."""
    answer = v4(server, "openim/query_online_status", {"To_Account": [user], "IsNeedDetail": 1})
    assert answer["ErrorCode"] == 0, answer
    item = answer["QueryResult"][0]
    return item["Status"], sorted((d["Platform"], d["Status"]) for d in item.get("Detail", []))


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


def find(page: Any, user: str) -> Any:
    page.click("a[data-nav=accounts]")
    page.fill("#acc-prefix", user)
    page.press("#acc-prefix", "Enter")
    row = page.locator(f"#acc-rows tr[data-userid='{user}']")
    row.wait_for()
    return row


def test_log_a_device_in_and_out_from_the_accounts_page(page: Any,
                                                         live_console: LiveServer) -> None:
    user = uid("dev")
    assert v4(live_console, "im_open_login_svc/account_import", {"UserID": user})["ErrorCode"] == 0
    row = find(page, user)
    assert row.get_attribute("data-status") == "Offline"
    assert "Offline" in row.locator(".acc-status").inner_text()
    assert online(live_console, user) == ("Offline", [])

    row.locator("select.acc-platform").select_option("iPhone")
    row.get_by_role("button", name=f"Log {user} in").click()
    page.wait_for_selector(f"#acc-message:has-text('Logged {user} in on iPhone.')")
    page.wait_for_selector(f"#acc-rows tr[data-userid='{user}'][data-status=Online]")
    row = page.locator(f"#acc-rows tr[data-userid='{user}']")
    assert "iPhone · Online" in row.locator(".acc-state").inner_text()
    assert online(live_console, user) == ("Online", [("iPhone", "Online")])

    row.locator("select.acc-platform").select_option("Web")
    row.get_by_role("button", name=f"Log {user} in").click()
    page.wait_for_selector(f"#acc-rows tr[data-userid='{user}'] .device:has-text('Web · Online')")
    assert online(live_console, user) == ("Online", [("Web", "Online"), ("iPhone", "Online")])
    page.locator("#acc-message").wait_for()
    shoot(page, "accounts-login-state")

    # one device out (its ×), then every device
    page.get_by_role("button", name=f"Log {user} out of iPhone").click()
    page.wait_for_selector(f"#acc-message:has-text('Logged {user} out of 1 device (iPhone).')")
    page.wait_for_selector(f"#acc-rows tr[data-userid='{user}'] .device:has-text('iPhone')",
                           state="detached")
    assert online(live_console, user) == ("Online", [("Web", "Online")])
    page.get_by_role("button", name=f"Log {user} out", exact=True).click()
    page.wait_for_selector(f"#acc-rows tr[data-userid='{user}'][data-status=Offline]")
    assert page.locator(f"#acc-rows tr[data-userid='{user}'] .device").count() == 0
    assert online(live_console, user) == ("Offline", [])


def test_a_login_the_server_refuses_is_shown_as_an_error(page: Any,
                                                        live_console: LiveServer) -> None:
    user = uid("gone")
    assert v4(live_console, "im_open_login_svc/account_import", {"UserID": user})["ErrorCode"] == 0
    row = find(page, user)
    # deleted behind the page's back: the emulator answers 70107, the page says so
    assert v4(live_console, "im_open_login_svc/account_delete",
              {"DeleteItem": [{"UserID": user}]})["ErrorCode"] == 0
    row.get_by_role("button", name=f"Log {user} in").click()
    alert = page.locator("#acc-message[role=alert]")
    alert.wait_for()
    assert "Log in failed: 70107" in alert.inner_text()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_live_console(tmp_path_factory.mktemp("console-prod"), "--no-emulator")
    yield server
    server.stop()


def test_without_the_emulator_the_page_shows_state_but_no_login_buttons(
        browser: Any, production: LiveServer) -> None:
    user = uid("prod")
    assert v4(production, "im_open_login_svc/account_import", {"UserID": user})["ErrorCode"] == 0
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    try:
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{production.base_url}/console/#token={TOKEN}")
        tab.wait_for_selector("body[data-ready=true]")
        row = find(tab, user)
        assert row.get_attribute("data-status") == "Offline"
        assert row.locator("select.acc-platform").count() == 0
        assert row.get_by_role("button", name=f"Log {user} in").count() == 0
        assert row.get_by_role("button", name=f"Kick {user}").count() == 1
        assert "without the emulator" in tab.inner_text("#acc-login-note")
        assert not errors, errors
    finally:
        context.close()
