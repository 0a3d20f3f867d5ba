"""Shared fixtures: a database, apps, an in-process client and a real server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import (
    SDKAPPID,
    Api,
    LiveServer,
    drop_postgres_database,
    fresh_postgres_database,
    make_app,
    postgres_server_or_skip,
)

from timserver.server.asgi import Settings
from timserver.storage import App, make_storage
from timserver.wiring import make_app as make_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The PostgreSQL server for the tests (``$TIMSERVER_TEST_PG``), or skip/fail."""
    server = postgres_server_or_skip()
    yield server
    drop_postgres_database(server)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The behaviour suite runs on every backend: the same tests, parametrised."""
    return _database(request, tmp_path, "timserver.db")


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Any]:
    st = make_storage(db_url)
    await st.open()
    yield st
    await st.close()


@pytest.fixture
async def server_app(db_url: str) -> AsyncIterator[Any]:
    """The ASGI app with its lifespan entered (storage open)."""
    asgi = make_server(Settings(db=db_url))
    async with asgi.router.lifespan_context(asgi):
        yield asgi


@pytest.fixture
async def client(server_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://timserver") as c:
        yield c


@pytest.fixture
async def app(server_app: Any) -> App:
    return await make_app(server_app, sdkappid=SDKAPPID)


@pytest.fixture
async def api(client: httpx.AsyncClient, app: App) -> Api:
    return Api(client, app)


@pytest.fixture
def live_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'live.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def any_live_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for a live server, on each backend."""
    return _database(request, tmp_path, "live.db")


def _database(request: pytest.FixtureRequest, tmp_path: Path, sqlite_name: str) -> str:
    """A fresh database on the backend named by the fixture's parameter."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / sqlite_name}"
    return fresh_postgres_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def live(live_db: str) -> Iterator[LiveServer]:
    server = LiveServer(live_db)
    yield server
    server.stop()

