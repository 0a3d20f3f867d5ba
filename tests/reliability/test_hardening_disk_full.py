"""Issue 12, item 11: /readyz follows the outcome of the last SQLite write (docs/deploy.md).

Writes are made to fail for real: SQLite's own size limit on the server's write connection
(``PRAGMA max_page_count``, everywhere), and a small tmpfs that fills up (as root). Before the
fix /readyz stayed 200 while every write failed, since reads (its only check) went on working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from reliability_support import (
    Server,
    create_apps,
    create_apps_async,
    log_defects,
    record,
    v4_query,
)

from timserver.server.asgi import Settings
from timserver.storage.sqlite.engine import WRITE_PROBE_AFTER
from timserver.wiring import make_app

A = 1400007191
IMPORT = "/v4/im_open_login_svc/multiaccount_import"


def _batch(prefix: str, n: int = 100) -> bytes:
    return json.dumps({"AccountList": [{"UserID": f"{prefix}_{i}", "Nick": "n" * 200}
                                       for i in range(n)]}).encode()


async def test_readiness_follows_the_last_write_in_process(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'full.db'}"
    (app,) = await create_apps_async(db, [{"sdkappid": A}])
    asgi = make_app(Settings(db=db))
    async with asgi.router.lifespan_context(asgi):
        storage = asgi.state.storage
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            async def imported(prefix: str) -> int:
                resp = await client.post(f"{IMPORT}?{v4_query(app)}", content=_batch(prefix))
                return resp.json()["ErrorCode"]

            assert await imported("ok") == 0
            assert (await client.get("/readyz")).status_code == 200
            # The write connection may not grow the database any more: SQLITE_FULL.
            writer = storage.engine.writer  # (not counted as a write of the server's own)
            pages = await writer.submit(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
            await writer.submit(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))
            codes = [await imported(f"full{i}") for i in range(5)]
            assert codes[-1] == 70500 and set(codes) <= {0, 70500}, codes
            ready = await client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json() == {"status": "unavailable",
                                    "checks": {"database": True, "writes": False}}
            await writer.submit(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
            assert (await client.get("/readyz")).status_code == 503  # until a write succeeds
            assert await imported("again") == 0
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["writes"] is True


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own (root only: skipped elsewhere)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_readiness_on_a_full_disk_over_http(small_filesystem: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{small_filesystem / 'timserver.db'}"
    (app,) = create_apps(db, [{"sdkappid": A}])
    server = Server(db, tmp_path, "--no-access-log", log_level="warning")
    filler = small_filesystem / "filler"
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            def imported(prefix: str) -> int:
                resp = client.post(f"{IMPORT}?{v4_query(app)}", content=_batch(prefix))
                assert resp.status_code == 200
                return resp.json()["ErrorCode"]

            assert imported("ok") == 0
            assert client.get("/readyz").status_code == 200
            with open(filler, "wb") as out:  # fill the disk to the last block
                try:
                    while True:
                        out.write(b"\0" * 65536)
                        out.flush()
                except OSError:
                    pass
            codes = []
            for i in range(50):  # the WAL's free room first, then SQLITE_FULL
                codes.append(imported(f"full{i}"))
                if codes[-1] == 70500:
                    break
            assert codes[-1] == 70500, codes
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["writes"] is False
            assert client.get("/healthz").status_code == 200  # alive: not to be restarted
            filler.unlink()
            assert imported("again") == 0
            assert client.get("/readyz").status_code == 200
    finally:
        server.stop()
    assert log_defects(server.log()) == []
    record("disk_full", writes_before_full=len(codes) - 1, probe_after_s=WRITE_PROBE_AFTER)
