"""Fixtures of the web-console tests: in-process apps on a loopback address, a live server,
and headless Chromium (Debian's, driven by Playwright; skipped with a message when absent)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from support import LiveServer

from timserver.server.asgi import Settings
from timserver.wiring import make_app

# Works under both pytest import modes: make console_support importable by the test modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from console_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    start_live_console,
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
    server = start_live_console(tmp_path_factory.mktemp("console-live"))
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
