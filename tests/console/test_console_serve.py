"""`timserver serve` and the console: the printed link, --no-console, --console-bind."""

from __future__ import annotations

import os

import httpx
import pytest
from console_support import TOKEN
from support import LiveServer, cli

pytestmark = pytest.mark.slow


def start(db: str, *args: str, token: str | None = TOKEN) -> LiveServer:
    old = os.environ.pop("TIMSERVER_CONSOLE_TOKEN", None)
    if token is not None:
        os.environ["TIMSERVER_CONSOLE_TOKEN"] = token
    try:
        return LiveServer(db, *args)
    finally:
        os.environ.pop("TIMSERVER_CONSOLE_TOKEN", None)
        if old is not None:
            os.environ["TIMSERVER_CONSOLE_TOKEN"] = old


def test_serve_prints_the_console_link_and_serves_the_console(live_db: str) -> None:
    server = start(live_db)
    try:
        page = httpx.get(f"{server.base_url}/console/", timeout=10)
        assert page.status_code == 200 and "timserver console" in page.text
        apps = httpx.get(f"{server.base_url}/_timserver/console/apps",
                         headers={"X-Timserver-Console-Token": TOKEN}, timeout=10).json()
        assert apps["ErrorCode"] == 0 and len(apps["Apps"]) == 1
    finally:
        out = server.stop()
    # the fragment also names the app printed above, which the page starts on
    sdkappid = apps["Apps"][0]["SDKAppID"]
    assert f"Web console:      {server.base_url}/console/#token={TOKEN}&app={sdkappid}\n" in out


def test_a_fresh_random_token_when_none_is_given(live_db: str) -> None:
    server = start(live_db, token=None)
    out = server.stop()
    line = next(x for x in out.splitlines() if x.startswith("Web console:"))
    token = line.split("#token=")[1].split("&")[0]
    assert len(token) >= 32 and token != TOKEN


def test_no_console_turns_it_off(live_db: str) -> None:
    server = start(live_db, "--no-console")
    try:
        for path in ("/console/", "/"):
            resp = httpx.get(f"{server.base_url}{path}", timeout=10, follow_redirects=False)
            assert resp.status_code == 200 and resp.json()["ErrorCode"] == 60009
    finally:
        out = server.stop()
    assert "Web console" not in out and TOKEN not in out


def test_console_bind_must_be_an_address(live_db: str) -> None:
    result = cli("serve", "--console-bind", "not-an-ip", "--port", "1", db=live_db, check=False)
    assert result.returncode == 2
    assert "--console-bind" in result.stderr and "not an IP address" in result.stderr
