#!/usr/bin/env python3
"""Take the web console's screenshots for docs/screenshots/ (headless Debian Chromium).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts `timserver serve` on a free loopback port with a throw-away database, fills it with
a few accounts and requests, and photographs each page. Needs /usr/bin/chromium
(scripts/install-browser.sh) and Playwright for Python (the test extras).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from timserver import usersig
from timserver.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
SDKAPPID = 1400012345
TOKEN = "screenshots-token-0123456789"  # noqa: S105 (a throw-away server's token)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PEOPLE = [("alice", "Alice Martin"), ("bob", "Bob Chen"), ("carol", "Carol Diaz"),
          ("dave", "Dave Okafor"), ("erin", "Erin Novak"), ("frank", "Frank Weber"),
          ("grace", "Grace Liu"), ("heidi", "Heidi Park"), ("ivan", "Ivan Petrov"),
          ("judy", "Judy Santos"), ("mallory", "Mallory Reyes"), ("oscar", "Oscar Lindqvist")]


def timserver(*args: str, db: str) -> str:
    return subprocess.run([sys.executable, "-m", "timserver", *args, "--db", db],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def seed(base: str, key: str) -> None:
    """Accounts for the accounts page, a mix of answers for the journal."""
    def call(command: str, body: object, sig: str | None = None) -> None:
        sig = sig or usersig.generate(SDKAPPID, key, "administrator", 3600, now=int(time.time()))
        httpx.post(f"{base}/v4/im_open_login_svc/{command}?sdkappid={SDKAPPID}"
                   f"&identifier=administrator&usersig={sig}"
                   f"&random={random.randrange(2**32)}&contenttype=json",
                   content=json.dumps(body), timeout=10)

    call("multiaccount_import", {"AccountList": [
        {"UserID": uid, "Nick": nick, "FaceUrl": f"https://cdn.example.com/avatars/{uid}.png"}
        for uid, nick in PEOPLE]})
    call("account_check", {"CheckItem": [{"UserID": "alice"}, {"UserID": "zoe"}]})
    call("account_import", {"UserID": "peggy", "Nick": "Peggy Olsen"})
    call("kick", {"UserID": "trent"})
    call("account_check", {"CheckItem": [{"UserID": "bob"}]},
         sig=usersig.generate(SDKAPPID, "0" * 64, "administrator", 3600, now=int(time.time())))
    call("account_delete", {"DeleteItem": [{"UserID": "peggy"}]})
    call("account_check", {"CheckItem": "bob"})
    call("kick", {"UserID": "mallory"})
    # login state for the accounts page (the emulator's simulated logins)
    sig = usersig.generate(SDKAPPID, key, "administrator", 3600, now=int(time.time()))
    auth = f"sdkappid={SDKAPPID}&identifier=administrator&usersig={sig}"
    for path, body in (("login", {"UserID": "alice", "Platform": "iPhone"}),
                       ("login", {"UserID": "alice", "Platform": "Web"}),
                       ("login", {"UserID": "bob", "Platform": "Android"}),
                       ("disconnect", {"UserID": "bob"}),
                       ("login", {"UserID": "dave", "Platform": "PC"})):
        httpx.post(f"{base}/_timserver/{path}?{auth}", json=body, timeout=10)


def tamper(sig: str) -> str:
    raw = zlib.decompress(base64.b64decode(sig.translate(str.maketrans("*-_", "+/="))))
    doc = {**json.loads(raw), "TLS.expire": 10**8}
    packed = zlib.compress(json.dumps(doc).encode())
    return base64.b64encode(packed).decode().translate(str.maketrans("+/=", "*-_"))


def shoot(page: Page, out: Path, name: str) -> None:
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(f"wrote {out / name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    opts = parser.parse_args()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="timserver-shots-") as tmp:
        db = f"sqlite:///{tmp}/shots.db"
        key = json.loads(timserver("app", "create", "--json", "--sdkappid", str(SDKAPPID), db=db))["key"]
        timserver("app", "create", "--sdkappid", "1400067890", "--edition", "trial", db=db)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "timserver", "serve", "--port", str(port), "--db", db,
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TIMSERVER_CONSOLE_TOKEN": TOKEN})
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            seed(base, key)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=opts.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 860})
                page.set_default_timeout(10_000)
                page.goto(f"{base}/console/#token={TOKEN}")
                page.wait_for_selector("body[data-ready=true]")

                # 1. API debugger: account_check of an imported and a missing account
                page.fill("#body-input", json.dumps(
                    {"CheckItem": [{"UserID": "alice"}, {"UserID": "UserID_2"}]}, indent=2))
                page.click("#send")
                page.wait_for_selector("#resp-items")
                shoot(page, out, "debugger")

                # 2. Accounts
                page.click("a[data-nav=accounts]")
                page.wait_for_selector("#acc-rows tr[data-userid=alice]")
                page.fill("#imp-userid", "walter")
                page.fill("#imp-nick", "Walter White")
                page.click("#import-one button[type=submit]")
                page.wait_for_selector("#acc-message:has-text('Imported walter.')")
                page.wait_for_selector("#acc-rows tr[data-userid=walter]")
                page.check("#acc-rows tr[data-userid=carol] input[type=checkbox]")
                page.check("#acc-rows tr[data-userid=dave] input[type=checkbox]")
                shoot(page, out, "accounts")

                # 3. UserSig tools: generate one, explain a tampered one
                page.click("a[data-nav=usersig]")
                page.fill("#gen-userid", "alice")
                page.click("#gen-form button[type=submit]")
                page.wait_for_selector("#gen-output:not([hidden])")
                good = page.input_value("#gen-sig")
                page.fill("#exp-sig", tamper(good))
                page.click("#explain-form button[type=submit]")
                page.wait_for_selector("#exp-verdict.verdict-bad")
                shoot(page, out, "usersig")

                # 4. Request journal, live
                page.click("a[data-nav=journal]")
                page.wait_for_selector("#j-rows tr[data-id]")
                page.check("#jscope-all")
                page.wait_for_timeout(1500)
                shoot(page, out, "journal")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
