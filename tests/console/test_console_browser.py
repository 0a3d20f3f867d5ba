"""The web console end to end: headless Chromium on a live server over loopback HTTP.

Skipped, with the reason, when /usr/bin/chromium or Playwright is missing (make test installs
Chromium through scripts/install-browser.sh when it can).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zlib
from typing import Any

import httpx
import pytest
from console_support import LIVE_APP, OTHER_APP, OTHER_KEY, TOKEN
from support import KEY, uid

from timserver import usersig

pytestmark = pytest.mark.slow


def tamper(sig: str, **changes: Any) -> str:
    """Re-pack a UserSig with some fields changed (and the old TLS.sig kept)."""
    raw = zlib.decompress(base64.b64decode(sig.translate(str.maketrans("*-_", "+/="))))
    packed = zlib.compress(json.dumps({**json.loads(raw), **changes}).encode())
    return base64.b64encode(packed).decode().translate(str.maketrans("+/=", "*-_"))


def choose(page: Any, command: str) -> None:
    page.select_option("#command-select", f"/v4/im_open_login_svc/{command}")


def send(page: Any) -> None:
    page.click("#send")  # the button says "Sending…" until the answer is shown
    page.wait_for_selector("#send:not([disabled]):has-text('Send request')")
    page.wait_for_selector("#response:not([hidden])")


def test_debugger_account_check_shows_imported_and_not_imported(page: Any) -> None:
    assert page.input_value("#sdkappid") == str(LIVE_APP)
    assert page.is_checked("#signing-server")
    choose(page, "account_check")
    sample = json.loads(page.input_value("#body-input"))
    assert sample == {"CheckItem": [{"UserID": "UserID_1"}, {"UserID": "UserID_2"}]}
    missing = uid("missing")
    page.fill("#body-input", json.dumps(
        {"CheckItem": [{"UserID": "administrator"}, {"UserID": missing}]}))
    send(page)
    assert page.inner_text("#resp-status") == "OK"
    rows = page.locator("#resp-items tbody tr")
    assert rows.count() == 2
    assert "administrator" in rows.nth(0).inner_text() and "Imported" in rows.nth(0).inner_text()
    assert missing in rows.nth(1).inner_text() and "NotImported" in rows.nth(1).inner_text()
    assert '"AccountStatus": "NotImported"' in page.inner_text("#resp-body")
    assert "ms" in page.inner_text("#resp-latency")

    # The URL is shown with the UserSig masked, revealed on demand; the curl command follows.
    masked = page.inner_text("#req-url")
    assert "usersig=" in masked and "characters hidden" in masked
    assert "/v4/im_open_login_svc/account_check?sdkappid=" in masked
    assert "&random=" in masked and "&contenttype=json" in masked
    page.check("#reveal-sig")
    shown = page.inner_text("#req-url")
    sig = shown.split("usersig=")[1].split("&")[0]
    doc = usersig.verify(sig, sdkappid=LIVE_APP, identifier="administrator", key=KEY,
                         now=int(time.time()))
    assert doc.identifier == "administrator"
    assert page.inner_text("#req-curl").startswith("curl -s -X POST 'http://127.0.0.1:")
    assert sig in page.inner_text("#req-curl")


def test_debugger_explains_a_failure_with_the_catalogue(page: Any) -> None:
    choose(page, "kick")
    page.fill("#body-input", json.dumps({"UserID": uid("ghost")}))
    send(page)
    assert page.inner_text("#resp-status") == "FAIL"
    assert "70107" in page.inner_text("#resp-code")
    assert "ACCOUNT_NOT_FOUND" in page.inner_text("#resp-code")
    assert "does not exist" in page.inner_text("#resp-meaning")
    page.fill("#body-input", "{not json")
    send(page)
    assert "60003" in page.inner_text("#resp-code")


def test_a_key_typed_in_the_page_signs_in_the_browser(page: Any) -> None:
    """Another app, signed with WebCrypto + the page's stored-block zlib: the server accepts it."""
    page.check("#signing-key")
    page.select_option("#app-select", str(OTHER_APP))
    page.fill("#key", OTHER_KEY)
    page.dispatch_event("#key", "change")
    choose(page, "account_check")
    send(page)
    assert page.inner_text("#resp-status") == "OK", page.inner_text("#resp-meaning")
    # the same signer, from the UserSig tools: Python decodes and verifies what the browser made
    page.click("a[data-nav=usersig]")
    page.fill("#gen-userid", "someone_else")
    page.select_option("#gen-expire", "3600")
    page.click("#gen-form button[type=submit]")
    page.wait_for_selector("#gen-output:not([hidden])")
    sig = page.input_value("#gen-sig")
    doc = usersig.verify(sig, sdkappid=OTHER_APP, identifier="someone_else", key=OTHER_KEY,
                         now=int(time.time()))
    assert doc.expire == 3600 and doc.ver == "2.0"


def test_the_pure_js_hmac_fallback_matches_python(page: Any) -> None:
    key, message = "k" * 70, "TLS.identifier:名字\nTLS.sdkappid:1\n" * 9
    digest = page.evaluate(
        "([k, m]) => Array.from(TimSign.hmacSha256Js(new TextEncoder().encode(k),"
        " new TextEncoder().encode(m)), b => b.toString(16).padStart(2, '0')).join('')",
        [key, message])
    assert digest == hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_import_an_account_and_find_it_on_the_accounts_page(page: Any) -> None:
    page.click("a[data-nav=accounts]")
    page.wait_for_selector("#acc-rows tr[data-userid=administrator]")
    # the role: an admin's UserID carries an "Admin" badge
    assert "Admin" in page.inner_text("#acc-rows tr[data-userid=administrator] td:nth-child(2)")
    user = uid("console")
    page.fill("#imp-userid", user)
    page.fill("#imp-nick", "Console User")
    page.click("#import-one button[type=submit]")
    page.wait_for_selector(f"#acc-message:has-text('Imported {user}.')")
    page.fill("#acc-prefix", user[:12])
    page.click("#accounts-search button[type=submit]")
    page.wait_for_selector("#acc-rows tr[data-userid=administrator]", state="detached")
    row = page.locator(f"#acc-rows tr[data-userid='{user}']")
    assert "Console User" in row.inner_text()
    assert "Admin" not in row.inner_text()
    assert page.locator("#acc-rows tr").count() == 1

    # import a pasted list (one good line, one too long), then delete through the dialog
    other = uid("listed")
    page.fill("#imp-list", f"UserID,Nick,FaceUrl\n{other},Listed,https://example.com/a.png\n"
                           + "x" * 40)
    page.click("#import-list button[type=submit]")
    page.wait_for_selector("#imp-result:has-text('Imported 1 account; 1 failed.')")  # by its form
    assert "bytes long" in page.inner_text("#imp-result")
    page.fill("#acc-prefix", other)
    page.click("#accounts-search button[type=submit]")
    listed = page.locator(f"#acc-rows tr[data-userid='{other}']")
    listed.wait_for()
    listed.get_by_role("button", name=f"Delete {other}").click()
    page.click("#confirm-ok")
    page.wait_for_selector("#acc-message:has-text('Deleted 1 account.')")
    page.wait_for_selector("#acc-rows td.empty")


def test_explain_a_tampered_usersig_and_read_why_it_fails(page: Any) -> None:
    page.click("a[data-nav=usersig]")
    good = usersig.generate(LIVE_APP, KEY, "administrator", 86400, now=int(time.time()))
    page.fill("#exp-sig", good)
    page.click("#explain-form button[type=submit]")
    page.wait_for_selector("#exp-verdict.verdict-ok")
    assert "Valid: yes" in page.inner_text("#exp-verdict")
    # Its validity stretched to ~3 years without the key: the HMAC no longer matches.
    page.fill("#exp-sig", tamper(good, **{"TLS.expire": 10**8}))
    page.click("#explain-form button[type=submit]")
    page.wait_for_selector("#exp-verdict.verdict-bad")
    verdict = page.inner_text("#exp-verdict")
    assert "Valid: NO" in verdict
    assert "signature does not match" in verdict
    assert "70009" in verdict and "USERSIG_VERIFY_FAILED" in verdict
    fields = page.inner_text("#exp-fields")
    assert "administrator" in fields and str(LIVE_APP) in fields and "hosted here" in fields
    page.fill("#exp-sig", good[:30] + "%" + good[31:])
    page.click("#explain-form button[type=submit]")
    page.wait_for_selector("#exp-verdict:has-text('70003')")
    assert "cannot be parsed" in page.inner_text("#exp-verdict")


def test_requests_appear_live_in_the_journal(page: Any, live_console: Any) -> None:
    choose(page, "account_check")
    send(page)
    page.click("a[data-nav=journal]")
    first = page.locator("#j-rows tr", has_text="account_check").first
    first.wait_for()
    assert "0 OK" in first.inner_text()
    # a call from outside the browser shows up by itself (the page polls)
    marker = uid("journal")
    sig = usersig.generate(LIVE_APP, KEY, "administrator", 3600, now=int(time.time()))
    resp = httpx.post(f"{live_console.base_url}/v4/im_open_login_svc/kick?sdkappid={LIVE_APP}"
                      f"&identifier=administrator&usersig={sig}&random=7&contenttype=json",
                      content=json.dumps({"UserID": marker}), timeout=10)
    assert resp.json()["ErrorCode"] == 70107
    row = page.locator("#j-rows tr", has_text="70107")
    row.first.wait_for(timeout=10_000)
    assert "ACCOUNT_NOT_FOUND" in row.first.inner_text()
    assert "usersig" not in page.inner_text("#j-table").lower()
    # a call no app can claim (unknown SDKAppID) is only in the operator's view (token)
    httpx.post(f"{live_console.base_url}/v4/im_open_login_svc/kick?sdkappid=42&identifier=a"
               "&usersig=x&random=1&contenttype=json", content=b"{}", timeout=10)
    time.sleep(1.5)  # two polls of the app's view: the call must not appear there
    assert page.locator("#j-rows tr", has_text="60006").count() == 0
    page.check("#jscope-all")
    page.locator("#j-rows tr", has_text="60006").first.wait_for()
    assert "kick" in page.inner_text("#j-rows")


def test_without_the_token_the_page_gets_no_server_signatures(browser: Any,
                                                             live_console: Any) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        seen: list[str] = []
        tab.on("response", lambda r: seen.append(r.url))
        tab.goto(f"{live_console.base_url}/console/")
        tab.wait_for_selector("body[data-ready=true]")
        assert tab.inner_text("#session-status") == "No console token"
        assert tab.is_disabled("#signing-server") and tab.is_checked("#signing-key")
        assert tab.locator("#app-select option").count() == 1  # no hosted app is listed
        tab.fill("#sdkappid", str(LIVE_APP))
        tab.click("#send")  # no key typed: the page says what to do, nothing is sent
        tab.wait_for_selector("#debug-error:has-text(\"Type the app's secret key\")")
        assert not any("/v4/" in u or "/console/usersig" in u for u in seen)
        # the token dialog takes the token and the server then signs
        tab.click("#token-open")
        tab.fill("#token-input", TOKEN)
        tab.click("#token-save")
        tab.wait_for_selector("#session-status:has-text('Operator session')")
        tab.check("#signing-server")
        send(tab)
        assert tab.inner_text("#resp-status") == "OK"
    finally:
        context.close()
