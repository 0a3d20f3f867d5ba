"""The emulator's tests run against real server processes, through ``timserver.testing``.

``tim_server`` (the session's server, reset before each test) is the fixture users get from
``pytest_plugins = ["timserver.testing"]``; here it is imported, since only the root conftest
may name plugins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from timserver.testing import TimServer, start_server, tim_server, tim_server_session

__all__ = ["tim_server", "tim_server_session"]


@pytest.fixture
def second_app(tim_server: TimServer) -> dict[str, Any]:
    """Another app on the same server (made by the CLI while it runs)."""
    import json

    return json.loads(tim_server.cli("app", "create", "--json").stdout)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: Any) -> Iterator[TimServer]:
    """A server with two worker processes (their rate limits unlimited)."""
    server = start_server(args=["--workers", "2"], unlimited=True,
                          folder=tmp_path_factory.mktemp("two-workers"))
    try:
        yield server
    finally:
        server.stop()
