"""Issue 12, item 8: files that hold keys or accounts are readable by their owner only
(docs/security.md: "Keys on disk").

The database holds every app's secret key in clear; before the fix it was created 0644 (and its
-wal, -shm and snapshots with it) in 0755 folders, whatever a deployment's umask.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from reliability_support import create_apps, sign
from support import LiveServer, cli

from timserver.server import tls

A = 1400007181


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask (022), under which files are made 0644 unless asked otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_database_wal_shm_snapshots_and_folders_are_private(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "data"
    db_path = home / "timserver.db"
    db = f"sqlite:///{db_path}"
    server = LiveServer(db, "--no-access-log")  # serve creates the folders and the database
    try:
        made = json.loads(cli("app", "create", "--json", "--sdkappid", str(A), db=db).stdout)
        query = (f"sdkappid={A}&identifier=administrator&usersig="
                 f"{sign(_app(made))}&random=1&contenttype=json")
        resp = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_import?{query}",
                          json={"UserID": "file_user"}, timeout=10)
        assert resp.json()["ErrorCode"] == 0
        # while the server runs, its WAL and shared-memory files exist
        assert {p.name for p in home.iterdir()} >= {"timserver.db", "timserver.db-wal",
                                                    "timserver.db-shm"}
        for path in home.iterdir():
            assert mode(path) == 0o600, f"{path.name} is {mode(path):o}"
        assert mode(home) == 0o700 and mode(home.parent) == 0o700
        cli("snapshot", "save", "before", db=db)
        snapshots = home / "timserver.db.snapshots"
        assert mode(snapshots) == 0o700
        assert [(p.name, mode(p)) for p in snapshots.iterdir()] == [("before.db", 0o600)]
    finally:
        server.stop()


def _app(made: dict):
    from timserver.storage import App

    return App(made["sdkappid"], made["key"], made["edition"], tuple(made["admins"]))


def test_an_existing_world_readable_database_is_narrowed_on_open(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    create_apps(f"sqlite:///{db_path}", [{"sdkappid": A}])
    os.chmod(db_path, 0o644)  # as versions before the fix left it
    cli("app", "list", db=f"sqlite:///{db_path}")
    assert mode(db_path) == 0o600


def test_tls_material_is_private(tmp_path: Path) -> None:
    files = tls.ensure_self_signed(tmp_path / "new" / "tls")
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "tls") == 0o700
    for path in (files.ca_cert, files.cert, files.key):
        assert mode(path) == 0o600, path


def test_bulk_cli_state_file_is_private(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bulk.db'}"
    (app,) = create_apps(db, [{"sdkappid": A}])
    server = LiveServer(db, "--no-access-log")
    try:
        source = tmp_path / "accounts.csv"
        source.write_text("".join(f"bulk_{i}\n" for i in range(50)))
        state = tmp_path / "accounts.csv.import-state"
        state.write_text("left by an earlier run\n")
        os.chmod(state, 0o644)
        env = {**os.environ, "TIMSERVER_ENDPOINT": server.base_url,
               "TIMSERVER_SDKAPPID": str(app.sdkappid), "TIMSERVER_KEY": app.key,
               "TIMSERVER_ADMIN": "administrator"}
        command = [sys.executable, "-m", "timserver", "accounts", "import", str(source),
                   "--no-progress", "--retries", "0"]
        subprocess.run([sys.executable, "-m", "timserver", "faults", "add", "--sdkappid",
                        str(app.sdkappid), "--command", "multiaccount_import", "--code", "70500",
                        "--db", db], check=True, capture_output=True, timeout=60)
        # a failed batch stops the run: its state file is kept
        run = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        assert run.returncode == 3, run.stderr
        assert state.exists() and mode(state) == 0o600
        state.unlink()
        subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        assert state.exists() and mode(state) == 0o600  # created 0600 too
    finally:
        server.stop()
