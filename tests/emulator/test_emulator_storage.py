"""The emulator's storage methods, on every backend (the root conftest's ``storage``)."""

from __future__ import annotations

import asyncio
from typing import Any

from timserver.service import apps as app_rules
from timserver.storage import AccountWrite


async def test_fault_rules_and_their_counts(storage: Any) -> None:
    app = await app_rules.create_app(storage)
    other = await app_rules.create_app(storage)
    version = await storage.emulator_version()
    counted = await storage.add_fault(app.sdkappid, '{"Code": 70500}', 5)
    forever = await storage.add_fault(app.sdkappid, '{"Code": 70202}', None)
    theirs = await storage.add_fault(other.sdkappid, '{"Code": 70169}', None)
    assert await storage.emulator_version() != version
    assert (counted.remaining, counted.matched, counted.spec) == (5, 0, '{"Code": 70500}')
    assert [r.id for r in await storage.list_faults(app.sdkappid)] == [counted.id, forever.id]
    assert [r.id for r in await storage.list_faults()] == [counted.id, forever.id, theirs.id]

    # Twenty concurrent matching calls: exactly five take the count, numbered 1..5.
    hits = await asyncio.gather(*(storage.hit_fault(counted.id) for _ in range(20)))
    assert sorted(h for h in hits if h is not None) == [1, 2, 3, 4, 5]
    assert hits.count(None) == 15
    assert [await storage.hit_fault(forever.id) for _ in range(3)] == [1, 2, 3]
    (listed, _) = await storage.list_faults(app.sdkappid)
    assert (listed.remaining, listed.matched) == (0, 5)
    assert await storage.hit_fault(10**12) is None

    # One app's clear never touches another's rules.
    version = await storage.emulator_version()
    assert await storage.delete_faults(other.sdkappid, counted.id) == 0
    assert await storage.emulator_version() == version  # nothing changed, nothing to refresh
    assert await storage.delete_faults(app.sdkappid, counted.id) == 1
    assert await storage.delete_faults(app.sdkappid) == 1
    assert [r.id for r in await storage.list_faults()] == [theirs.id]


async def test_clock_offset(storage: Any) -> None:
    version = await storage.emulator_version()
    await storage.set_clock_offset(-12.345)
    assert await storage.clock_offset() == -12.345
    assert await storage.emulator_version() != version
    await storage.set_clock_offset(0)
    assert await storage.clock_offset() == 0


async def test_reset_accounts(storage: Any) -> None:
    app = await app_rules.create_app(storage, edition="trial", admins=("boss",))
    other = await app_rules.create_app(storage)
    await storage.import_accounts(app.sdkappid, [AccountWrite("a"), AccountWrite("b")], 100)
    await storage.import_accounts(other.sdkappid, [AccountWrite("a")], None)
    await storage.kick(app.sdkappid, "boss", 123)
    assert await storage.reset_accounts(app.sdkappid) == 2
    assert await storage.existing(app.sdkappid, ["a", "b", "boss"]) == {"boss"}
    assert await storage.kicked_at(app.sdkappid, "boss") == 123  # an admin's kick stays
    assert await storage.count_accounts(app.sdkappid) == 0
    assert await storage.existing(other.sdkappid, ["a"]) == {"a"}
    # The trial cap counts from zero again.
    applied = await storage.import_accounts(
        app.sdkappid, [AccountWrite(f"u{i}") for i in range(101)], 100)
    assert applied.count(True) == 100
