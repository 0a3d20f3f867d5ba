"""The SQLite storage's commit watch: a commit by any connection (another process's, here a
plain sqlite3 connection) moves the epoch; nothing else does. The per-call caches (apps, kicks,
emulator state) are only as right as this."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from timserver.storage.sqlite import SQLiteStorage
from timserver.storage.sqlite.engine import CommitWatch


def test_epoch_moves_on_every_foreign_commit_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def scenario() -> None:
        storage = SQLiteStorage(f"sqlite:///{path}")
        await storage.open()
        try:
            watch = storage.engine.watch
            assert isinstance(watch, CommitWatch)
            assert watch._map is not None  # read from a shared mapping, not a system call
            other = sqlite3.connect(path, isolation_level=None)
            try:
                first = watch.epoch()
                assert watch.epoch() == first  # nothing committed
                other.execute("SELECT count(*) FROM accounts").fetchall()  # a read commits nothing
                assert watch.epoch() == first
                for n in range(5):
                    before = watch.epoch()
                    other.execute("UPDATE meta SET value = value + 1 WHERE name = 'apps_version'")
                    assert watch.epoch() != before, f"commit {n} not seen"
                    assert watch.epoch() == watch.epoch()
            finally:
                other.close()
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_without_a_shm_file_every_ask_is_a_change(tmp_path: Path) -> None:
    watch = CommitWatch(str(tmp_path / "absent.db"))
    assert watch._map is None
    assert watch.epoch() != watch.epoch()
    watch.close()
