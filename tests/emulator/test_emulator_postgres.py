"""The emulator on a server whose database is PostgreSQL (skipped without one).

It uses a database of its own (created and dropped here), so that other suites sharing the
PostgreSQL server's test database cannot disturb it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import own_postgres_database

from timserver.testing import start_server

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "administrator"}]}


@pytest.fixture
def own_database() -> Iterator[str]:
    with own_postgres_database("timserver_emulator") as url:
        yield url


def test_rules_clock_and_reset_on_postgres(own_database: str, tmp_path: Path) -> None:
    with start_server(db=own_database, folder=tmp_path, args=["--workers", "2"],
                      unlimited=True) as server:
        server.cli("faults", "add", "--sdkappid", str(server.sdkappid), "--command",
                   "account_check", "--code", "70202", "--times", "3")
        codes = [server.call("account_check", BODY)["ErrorCode"] for _ in range(6)]
        assert codes == [70202, 70202, 70202, 0, 0, 0]
        sig = server.usersig(expire=60)
        server.set_clock(120)
        assert {server.call("account_check", BODY, usersig=sig)["ErrorCode"]
                for _ in range(6)} == {70001}
        server.call("account_import", {"UserID": "amy"})
        assert server.reset()["DeletedAccounts"] == 1
        assert {server.call("account_check", BODY, usersig=sig)["ErrorCode"]
                for _ in range(6)} == {0}
