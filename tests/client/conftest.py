"""Fixtures of the SDK and `timserver accounts` tests: one real server on a loopback port for the
whole directory, and a fresh app (its own SDKAppID, limits and fault rules) for each test."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import pytest
from support import LiveServer, cli

# Works under both pytest import modes: make sdk_support importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from sdk_support import ImApp  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path_factory.mktemp('sdk') / 'live.db'}"
    live = LiveServer(db, "--no-access-log")
    yield live
    live.stop()


@pytest.fixture
def im(server: LiveServer) -> ImApp:
    made = json.loads(cli("app", "create", "--json", db=server.db).stdout)
    return ImApp(server, made["sdkappid"], made["key"], made["admins"][0])
