"""§9.3 (atomic batches) and §9.5 (70500 / 70169 retryable failures): a second server whose
SQLite database is locked by the test for a few seconds."""

import os
import sqlite3
import time

import pytest
from contract_support import Api, App, ServerProcess, cli_create_app, sqlite_url, uid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def locked_env(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("resilience"))
    path = os.path.join(d, "res.db")
    db = sqlite_url(path)
    app = App("res", 1400000141, "developer")
    cli_create_app(db, app, cwd=d)
    srv = ServerProcess(db, d, name="res")
    client = Api(srv.base_url)
    yield app, client, path, srv
    client.close()
    srv.stop()


def test_write_while_database_locked_is_retryable_failure(locked_env):
    app, api, path, _srv = locked_env
    warm = uid()
    assert api.import_one(app, warm).code == 0
    users = [uid() for _ in range(3)]
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        r = api.multi_import(app, users)
        elapsed = time.monotonic() - t0
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert r.code in (70169, 70500), r
    assert elapsed < 4.5, f"answer took {elapsed:.1f}s; the request deadline is 3 s"
    if r.code == 70500:
        # §9.3: the call failed with 70500, so nothing of it was applied
        assert api.statuses(app, users) == ["NotImported"] * 3
    # after the lock is gone the server serves again (the error was retryable)
    r = api.multi_import(app, users)
    assert r.code == 0 and r["FailAccounts"] == []
    assert api.statuses(app, users) == ["Imported"] * 3


def test_single_import_while_locked_then_retry(locked_env):
    app, api, path, _srv = locked_env
    u = uid()
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        r = api.import_one(app, u)
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert r.code in (70169, 70500), r
    assert api.import_one(app, u).code == 0
    assert api.status(app, u) == "Imported"
