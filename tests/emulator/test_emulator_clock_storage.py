"""Per-app clock offsets: storage (both backends), the Clock, the Emulator's refresh, migration 0003."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from support import own_postgres_database

from timserver.emulator import state
from timserver.emulator.state import MAX_CLOCK_OFFSET, Emulator, StateError
from timserver.service import apps as app_rules
from timserver.service.clock import Clock
from timserver.storage import make_storage


async def test_app_clock_offsets_are_per_app(storage: Any) -> None:
    app = await app_rules.create_app(storage)
    other = await app_rules.create_app(storage)
    assert await storage.app_clock_offsets() == {}
    assert await storage.app_clock_offset(app.sdkappid) == 0
    version = await storage.emulator_version()
    await storage.set_app_clock_offset(app.sdkappid, 61.5)
    assert await storage.emulator_version() != version  # every server refreshes
    assert await storage.app_clock_offset(app.sdkappid) == 61.5
    assert await storage.app_clock_offset(other.sdkappid) == 0
    assert await storage.clock_offset() == 0  # the server-wide part is untouched
    await storage.set_app_clock_offset(other.sdkappid, -3.25)
    assert await storage.app_clock_offsets() == {app.sdkappid: 61.5, other.sdkappid: -3.25}
    await storage.set_app_clock_offset(app.sdkappid, 0)
    assert await storage.app_clock_offsets() == {other.sdkappid: -3.25}
    await storage.set_app_clock_offset(other.sdkappid, 0)
    assert await storage.app_clock_offsets() == {}


async def test_reset_and_set_touch_only_their_app(storage: Any) -> None:
    app = await app_rules.create_app(storage)
    other = await app_rules.create_app(storage)
    assert await state.set_app_clock(storage, app.sdkappid, 100) == 100
    assert await state.advance_app_clock(storage, app.sdkappid, 20) == 120
    await state.set_app_clock(storage, other.sdkappid, 7)
    done = await state.reset_app(storage, other.sdkappid, clock=True)
    assert done["ClockOffset"] == 0
    assert await storage.app_clock_offsets() == {app.sdkappid: 120}
    assert await storage.clock_offset() == 0


async def test_an_apps_time_stays_within_the_century(storage: Any) -> None:
    app = await app_rules.create_app(storage)
    try:
        await state.set_clock(storage, 1000)
        with pytest.raises(StateError, match="wall clock"):
            await state.set_app_clock(storage, app.sdkappid, MAX_CLOCK_OFFSET)
        await state.set_app_clock(storage, app.sdkappid, MAX_CLOCK_OFFSET - 1000)
        with pytest.raises(StateError):
            await state.advance_app_clock(storage, app.sdkappid, 1)
        assert await storage.app_clock_offset(app.sdkappid) == MAX_CLOCK_OFFSET - 1000
    finally:
        await state.set_clock(storage, 0)  # meta outlives the tests on the shared PostgreSQL


async def test_the_emulator_gives_each_app_its_time(storage: Any) -> None:
    app = await app_rules.create_app(storage)
    other = await app_rules.create_app(storage)
    clock = Clock(5.0)  # Settings.clock_offset, under everything stored
    emulator = Emulator(storage, clock)
    try:
        await storage.set_clock_offset(100)
        await storage.set_app_clock_offset(app.sdkappid, 50)
        await emulator.refresh(force=True)
        assert clock.offset_of(app.sdkappid) == 155
        assert clock.offset_of(other.sdkappid) == 105
        assert clock.offset_of() == 105
        assert abs(clock.now(app.sdkappid) - time.time() - 155) < 1
        assert abs(clock.now(other.sdkappid) - time.time() - 105) < 1
        assert emulator.app_offset(app.sdkappid) == 50 and emulator.app_offset(other.sdkappid) == 0
        # Offsets stored beyond the century (the server-wide one changed later) are bounded.
        await storage.set_clock_offset(MAX_CLOCK_OFFSET)
        await emulator.refresh(force=True)
        assert clock.offset_of(app.sdkappid) == MAX_CLOCK_OFFSET
        assert clock.offset_of(other.sdkappid) == MAX_CLOCK_OFFSET
        await storage.set_clock_offset(0)
        await storage.set_app_clock_offset(app.sdkappid, 0)
        await emulator.refresh(force=True)
        assert clock.offset_of(app.sdkappid) == 5 and clock.app_offsets == {}
    finally:
        await storage.set_clock_offset(0)


def test_clock_units() -> None:
    clock = Clock(10.0)
    assert abs(clock.now() - time.time() - 10) < 0.5
    clock.set_offsets(20.0, {1: 80.0, 2: 20.0})
    assert clock.offset == 20 and clock.app_offsets == {1: 80.0}  # 2 has no offset of its own
    assert abs(clock.now(1) - time.time() - 80) < 0.5
    assert abs(clock.now(2) - time.time() - 20) < 0.5
    assert abs(clock.now(3) - time.time() - 20) < 0.5


# --- migration 0003 keeps the offset stored before it as the server-wide part -------------------


@pytest.fixture(params=["sqlite", "postgres"])
def blank_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own (on PostgreSQL: created and dropped here, since this test rewinds
    the schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with own_postgres_database("timserver_clock") as url:
        yield url


REWIND = ["DROP TABLE app_clocks", "DELETE FROM schema_migrations WHERE version = 3",
          "UPDATE meta SET value = 42000 WHERE name = 'clock_offset_ms'"]


async def _rewind_to_0002(db: str) -> None:
    """Make the database what a server before migration 0003 left: an offset of 42 s stored."""
    if db.startswith("sqlite"):
        conn = sqlite3.connect(db.removeprefix("sqlite:///"))
        with conn:
            for sql in REWIND:
                conn.execute(sql)
        conn.close()
        return
    pg = await asyncpg.connect(db, timeout=5)
    try:
        for sql in REWIND:
            await pg.execute(sql)
    finally:
        await pg.close()


async def test_migration_0003_keeps_the_stored_offset_server_wide(blank_db: str) -> None:
    storage = make_storage(blank_db)
    await storage.open()
    await app_rules.create_app(storage)
    await storage.close()
    await _rewind_to_0002(blank_db)

    storage = make_storage(blank_db)
    await storage.open()  # migrates
    try:
        assert await storage.clock_offset() == 42
        assert await storage.app_clock_offsets() == {}
        (app,) = await storage.list_apps()
        await storage.set_app_clock_offset(app.sdkappid, 8)  # the new table is there
        assert await storage.app_clock_offsets() == {app.sdkappid: 8}
    finally:
        await storage.close()
