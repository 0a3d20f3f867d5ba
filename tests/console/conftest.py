"""Fixtures of the web-console tests: in-process apps on a loopback address, a live server,
and headless Chromium (Debian's, driven by Playwright; skipped with a message when absent)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import KEY, LiveServer, cli

from timserver.server.asgi import Settings
from timserver.wiring import make_app

# Works under both pytest import modes: make console_support importable by the test modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from console_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LIVE_APP,
    OTHER_APP,
    OTHER_KEY,
    TOKEN,
)


@pytest.fixture
async def make_console(db_url: str):
    """Build an in-process app with the given settings; yields a factory of clients."""
    stack: list[Any] = []

    async def factory(base_url: str = "http://127.0.0.1", **settings: Any) -> httpx.AsyncClient:
        asgi = make_app(Settings(db=db_url, **{"console_token": TOKEN, **settings}))
        ctx = asgi.router.lifespan_context(asgi)
        await ctx.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url=base_url)
        client.asgi = asgi  # type: ignore[attr-defined]
        stack.append((ctx, client))
        return client

    yield factory
    for ctx, client in reversed(stack):
        await client.aclose()
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def console(make_console) -> AsyncIterator[httpx.AsyncClient]:
    """A loopback client of an app whose console holds TOKEN."""
    yield await make_console()


# --- a live server for the browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`timserver serve` on a loopback port with two apps, the console token set to TOKEN."""
    folder: Path = tmp_path_factory.mktemp("console-live")
    db = f"sqlite:///{folder / 'live.db'}"
    json.loads(cli("app", "create", "--json", "--sdkappid", str(LIVE_APP), "--key", KEY,
                   db=db).stdout)
    cli("app", "create", "--json", "--sdkappid", str(OTHER_APP), "--key", OTHER_KEY, db=db)
    for name in ("account_import", "multiaccount_import", "account_delete", "account_check",
                 "kick"):
        cli("app", "set-limit", str(LIVE_APP), name, "0", db=db)
    old = os.environ.get("TIMSERVER_CONSOLE_TOKEN")
    os.environ["TIMSERVER_CONSOLE_TOKEN"] = TOKEN
    try:
        server = LiveServer(db)
    finally:
        if old is None:
            os.environ.pop("TIMSERVER_CONSOLE_TOKEN", None)
        else:
            os.environ["TIMSERVER_CONSOLE_TOKEN"] = old
    yield server
    server.stop()


def _browser_missing() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return (f"{CHROMIUM} is missing: run scripts/install-browser.sh as root (make test does) "
                "to run the web-console browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=CHROMIUM_ARGS, timeout=30_000)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_console: LiveServer) -> Iterator[Any]:
    """A fresh tab opened on the console link, holding the token; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{live_console.base_url}/console/#token={TOKEN}")
    tab.wait_for_selector("body[data-ready=true]")
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
