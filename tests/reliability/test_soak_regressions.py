"""Regression test for the defect the soak found on PostgreSQL.

Concurrent batch imports and deletes over the same accounts deadlocked ("deadlock detected",
answered 70500): imports lock their rows in UserID order, but a DELETE ... WHERE user_id =
ANY(...) locks them in the order its plan reads them (heap order under a bitmap scan). Fix
(storage/postgres.py): the delete locks its rows in UserID order first.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from support import fresh_postgres_database

from timserver.service import apps as app_rules
from timserver.storage import AccountWrite, StorageError, make_storage

pytestmark = pytest.mark.slow


def test_concurrent_batch_imports_and_deletes_never_deadlock(pg_server: str) -> None:
    asyncio.run(_imports_and_deletes(fresh_postgres_database(pg_server)))


async def _imports_and_deletes(db: str) -> None:
    storage = make_storage(db)
    await storage.open()
    try:
        app = await app_rules.create_app(storage, sdkappid=1400007020)
        pool = [f"d{i}" for i in range(3000)]
        await storage.import_accounts(app.sdkappid, [AccountWrite(u) for u in pool], None)
        failures: list[str] = []

        async def worker(n: int) -> None:
            rng = random.Random(n)
            for _ in range(40):
                batch = rng.sample(pool, 100)
                try:
                    if rng.random() < 0.5:
                        await storage.import_accounts(
                            app.sdkappid, [AccountWrite(u, nick="n") for u in batch], None)
                    else:
                        await storage.delete_accounts(app.sdkappid, batch)
                except StorageError as exc:
                    failures.append(str(exc).splitlines()[0])

        await asyncio.gather(*(worker(n) for n in range(12)))
        assert failures == []
    finally:
        await storage.close()
