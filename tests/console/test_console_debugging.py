"""The console as a debugging tool (issue 15, items 12-16), in Chromium on a live server that
records bodies (serve --record-bodies). Each test stores its screenshots at 800 and 1400 px in
docs/screenshots/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import LIVE_APP, OTHER_APP, TOKEN, start_live_console
from support import KEY, LiveServer, uid

from timserver import usersig

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
RED = "rgb(185, 28, 28)"  # --bad in console.css


@pytest.fixture(scope="module")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's server keeps request and response bodies in its journal."""
    server = start_live_console(tmp_path_factory.mktemp("console-debug"), "--record-bodies")
    yield server
    server.stop()


def shoot(page: Any, name: str) -> None:
    """docs/screenshots/{name}-800.png and -1400.png; at 800 px nothing may stick out."""
    for width in (800, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name}: the page is {overflow} px wide at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1360, "height": 900})


def choose(page: Any, command: str) -> None:
    page.select_option("#command-select", f"/v4/im_open_login_svc/{command}")


def send(page: Any) -> None:
    page.click("#send")
    page.wait_for_selector("#send:not([disabled]):has-text('Send request')")
    page.wait_for_selector("#response:not([hidden])")


def v4(server: LiveServer, command: str, body: Any) -> dict:
    sig = usersig.generate(LIVE_APP, KEY, "administrator", 3600, now=int(time.time()))
    return httpx.post(f"{server.base_url}/v4/im_open_login_svc/{command}?sdkappid={LIVE_APP}"
                      f"&identifier=administrator&usersig={sig}&random=9&contenttype=json",
                      content=json.dumps(body), timeout=10).json()


# --- 12: the journal -------------------------------------------------------------------------


def test_a_journal_row_opens_the_call_in_full(page: Any, live_console: LiveServer) -> None:
    named = uid("seen")
    choose(page, "account_check")
    page.fill("#body-input", json.dumps({"CheckItem": [{"UserID": named}]}))
    send(page)
    page.click("a[data-nav=journal]")
    row = page.locator("#j-rows tr", has_text="account_check").first
    row.click()
    detail = page.locator("#j-detail")
    detail.wait_for()
    text = detail.inner_text()
    assert "POST /v4/im_open_login_svc/account_check" in text
    assert "not recorded" in text and "UserSig" in text  # the query: never kept
    assert str(LIVE_APP) in text and "administrator" in text
    assert "0" in text and "Success." in text and " ms" in text
    assert "worker pid" in text
    assert named in page.inner_text("#j-detail-request")
    assert "AccountStatus" in page.inner_text("#j-detail-response")
    assert page.locator("#j-detail-response .tok-key").count() > 0
    assert "usersig=" not in text.lower()
    # a refused call: its code's meaning, from the catalogue
    assert v4(live_console, "kick", {"UserID": named})["ErrorCode"] == 70107
    refused = page.locator("#j-rows tr", has_text="70107").first
    refused.wait_for()
    refused.click()
    page.wait_for_selector("#j-detail-title:has-text('kick')")
    assert "does not exist" in page.inner_text("#j-detail-fields")
    shoot(page, "journal-call")


def test_the_consoles_own_actions_are_in_the_journal(page: Any) -> None:
    user = uid("byconsole")
    page.click("a[data-nav=accounts]")
    page.fill("#imp-userid", user)
    page.click("#import-one button[type=submit]")
    page.wait_for_selector(f"#acc-message:has-text('Imported {user}.')")
    page.click("a[data-nav=journal]")
    row = page.locator("#j-rows tr", has_text="multiaccount_import").first
    row.wait_for()
    assert "console" in row.inner_text() and "0 OK" in row.inner_text()
    row.click()
    page.wait_for_selector("#j-detail-fields:has-text('/_timserver/accounts/import')")
    assert user in page.inner_text("#j-detail-request")
    assert '"Imported"' in page.inner_text("#j-detail-response")


def test_the_journal_filters_by_command_code_user_and_app(page: Any,
                                                          live_console: LiveServer) -> None:
    named, other = uid("filtered"), uid("other")
    assert v4(live_console, "account_check", {"CheckItem": [{"UserID": named}]})["ErrorCode"] == 0
    assert v4(live_console, "account_check", {"CheckItem": [{"UserID": other}]})["ErrorCode"] == 0
    assert v4(live_console, "kick", {"UserID": other})["ErrorCode"] == 70107
    page.click("a[data-nav=journal]")
    page.locator("#j-rows tr", has_text="70107").first.wait_for()

    def shown() -> list[str]:
        page.wait_for_timeout(1300)  # a poll with the new filters
        return [t for t in page.locator("#j-rows tr").all_inner_texts()]

    page.fill("#jf-user", named)
    page.click("#j-filters button[type=submit]")
    rows = shown()
    assert len(rows) == 1 and "account_check" in rows[0]
    page.fill("#jf-user", "")
    page.fill("#jf-code", "70107")
    page.click("#j-filters button[type=submit]")
    rows = shown()
    assert rows and all("70107" in r for r in rows)
    page.fill("#jf-code", "")
    page.select_option("#jf-command", "kick")
    rows = shown()
    assert rows and all("kick" in r for r in rows)
    page.fill("#jf-code", "nope")
    page.click("#j-filters button[type=submit]")
    page.wait_for_selector("#j-error[role=alert]:has-text('ErrorCode must be a number')")
    page.click("#jf-reset")
    # every app (the token): one app only
    httpx.post(f"{live_console.base_url}/v4/im_open_login_svc/kick?sdkappid={OTHER_APP}"
               "&identifier=administrator&usersig=x&random=1&contenttype=json", content=b"{}")
    page.check("#jscope-all")
    page.locator("#j-rows tr", has_text=str(OTHER_APP)).first.wait_for()
    page.fill("#jf-app", str(LIVE_APP))
    page.click("#j-filters button[type=submit]")
    rows = shown()
    assert rows and all(str(OTHER_APP) not in r for r in rows)


# --- 13: bodies wrap and are highlighted -------------------------------------------------------


def test_response_bodies_wrap_are_highlighted_and_error_info_is_whole(page: Any) -> None:
    choose(page, "kick")
    page.fill("#body-input", json.dumps({"UserID": "u" * 300}))
    send(page)
    body = page.locator("#resp-body")
    answer = json.loads(body.inner_text())
    assert page.locator("#resp-body .tok-key").count() >= 3
    assert page.locator("#resp-body .tok-num").count() >= 1
    assert body.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the body scrolls sideways"
    info = answer["ErrorInfo"]
    assert answer["ErrorCode"] != 0 and len(info) > 60, answer
    meaning = page.locator("#resp-meaning")
    assert info in meaning.inner_text()  # whole, not cut with an ellipsis
    assert meaning.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    shoot(page, "debugger-error")


# --- 14: the app selector, search counts, the list import's result ------------------------------


def test_the_page_starts_on_the_app_of_the_link_then_the_last_used(browser: Any,
                                                                   live_console: Any) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        tab.goto(f"{live_console.base_url}/console/#token={TOKEN}&app={OTHER_APP}")
        tab.wait_for_selector("body[data-ready=true]")
        assert tab.input_value("#sdkappid") == str(OTHER_APP)  # not the lowest, LIVE_APP
        assert tab.input_value("#app-select") == str(OTHER_APP)
        tab.select_option("#app-select", str(LIVE_APP))
        tab.goto(f"{live_console.base_url}/console/")  # later, without the link: the last used
        tab.reload()
        tab.wait_for_selector("body[data-ready=true]")
        assert tab.input_value("#sdkappid") == str(LIVE_APP)
    finally:
        context.close()


def test_a_search_counts_its_matches_and_a_list_import_answers_by_its_form(page: Any) -> None:
    page.click("a[data-nav=accounts]")
    prefix = uid("m")
    page.fill("#imp-list", f"{prefix}a\n{prefix}b\n" + "y" * 40)
    page.click("#import-list button[type=submit]")
    result = page.locator("#import-list #imp-result")
    result.wait_for()
    page.wait_for_selector("#imp-result:has-text('Imported 2 accounts; 1 failed.')")
    assert "bytes long" in result.inner_text()
    total = page.inner_text("#acc-summary").split(" account")[0]
    page.fill("#acc-prefix", f"{prefix}a")
    page.click("#accounts-search button[type=submit]")
    page.wait_for_selector("#acc-summary:has-text('1 match of')")
    assert page.inner_text("#acc-summary") == f"1 match of {total} accounts in app {LIVE_APP}"
    page.fill("#acc-prefix", prefix)
    page.click("#accounts-search button[type=submit]")
    page.wait_for_selector("#acc-summary:has-text('2 matches of')")
    shoot(page, "accounts-search")


# --- 15: 800 px, the key field, errors ---------------------------------------------------------


def test_at_800_px_nothing_is_clipped_and_errors_are_errors(page: Any) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    page.wait_for_timeout(150)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    for selector in ("#token-open", "#session-status", "a[data-nav=journal]"):
        hit = page.evaluate(
            """s => { const b = document.querySelector(s).getBoundingClientRect();
                      const e = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
                      return b.right <= innerWidth && b.left >= 0
                             && document.querySelector(s).contains(e); }""", selector)
        assert hit, f"{selector} is covered or cut at 800 px"
    # the key: said at once, while typing, in red
    page.check("#signing-key")
    page.fill("#key", "abc123")
    error = page.locator("#key-error")
    assert "64 hexadecimal characters" in error.inner_text() and "6" in error.inner_text()
    assert error.get_attribute("role") == "alert"
    assert error.evaluate("e => getComputedStyle(e).color") == RED
    page.fill("#key", "g" * 64)
    assert "other characters" in error.inner_text()
    page.fill("#key", "b" * 64)
    assert error.inner_text() == ""
    # a refused call on the accounts page is an error, not grey text (a wrong key: 70009)
    page.dispatch_event("#key", "change")
    page.click("a[data-nav=accounts]")
    alert = page.locator("#acc-rows [role=alert]")
    alert.wait_for()
    assert "70009" in alert.inner_text()
    assert alert.evaluate("e => getComputedStyle(e).color") == RED
    page.fill("#key", "abc")
    shoot(page, "accounts-error")


# --- 16: the request history ----------------------------------------------------------------


def test_the_debugger_keeps_a_history_to_resend_or_edit(page: Any) -> None:
    page.evaluate("localStorage.removeItem('timserver.console.history')")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    first, second = uid("h1"), uid("h2")
    choose(page, "account_check")
    page.fill("#body-input", json.dumps({"CheckItem": [{"UserID": first}]}))
    send(page)
    choose(page, "kick")
    page.fill("#body-input", json.dumps({"UserID": second}))
    send(page)
    items = page.locator("#history-list li")
    assert items.count() == 2
    assert "kick" in items.nth(0).inner_text() and "70107" in items.nth(0).inner_text()
    assert "account_check" in items.nth(1).inner_text()
    stored = page.evaluate("localStorage.getItem('timserver.console.history')")
    assert first in stored and second in stored
    sig = page.inner_text("#req-url")
    assert "usersig" not in stored.lower() and KEY not in stored and TOKEN not in stored
    assert "sdkappid=" not in stored and sig not in stored
    # edit the older one: its command and body come back, nothing is sent
    page.get_by_role("button", name="Edit request 2").click()
    assert page.input_value("#command-select") == "/v4/im_open_login_svc/account_check"
    assert first in page.input_value("#body-input")
    assert items.count() == 2
    # re-send it: a third entry, the answer shown
    page.get_by_role("button", name="Re-send request 2").click()
    page.wait_for_selector("#history-list li:nth-child(3)")
    assert "account_check" in items.nth(0).inner_text()
    assert first in page.inner_text("#req-body")
    # kept across reloads, at most 50, newest first
    page.evaluate("""() => {
        const list = JSON.parse(localStorage.getItem('timserver.console.history'));
        while (list.length < 50) list.push({...list[list.length - 1], Body: 'old'});
        localStorage.setItem('timserver.console.history', JSON.stringify(list)); }""")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert items.count() == 50
    send(page)
    assert items.count() == 50 and "old" not in page.evaluate(
        "JSON.parse(localStorage.getItem('timserver.console.history'))[0].Body")
    shoot(page, "debugger-history")
