"""``dispatch.within``: a deadline that never waits for the work's clean-up; with ``eager``,
work that never waits runs inline, without a task."""

from __future__ import annotations

import asyncio

import pytest

from timserver.deadline import within
from timserver.storage.base import Capabilities
from timserver.storage.postgres import PostgresStorage
from timserver.storage.sqlite import SQLiteStorage

EAGER = pytest.mark.parametrize("eager", [False, True], ids=["task", "eager"])


async def test_eager_work_that_never_waits_finishes_inline_without_a_task() -> None:
    before = len(asyncio.all_tasks())

    async def work() -> int:
        assert len(asyncio.all_tasks()) == before  # no task made for it
        return 42

    assert await within(1.0, work(), eager=True) == 42


async def test_without_eager_the_work_is_a_task_of_its_own() -> None:
    caller = asyncio.current_task()

    async def work() -> bool:
        return asyncio.current_task() is not caller

    assert await within(1.0, work()) is True


def test_both_storages_run_inline_and_nothing_else_is_assumed_to() -> None:
    assert SQLiteStorage("sqlite:///x.db").capabilities.runs_inline is True
    assert PostgresStorage("postgresql://u@h/db").capabilities.runs_inline is True
    assert Capabilities().runs_inline is False


@pytest.fixture
def pg_url(pg_server: str) -> str:
    from support import fresh_postgres_database

    return fresh_postgres_database(pg_server)


async def test_postgres_work_started_inline_reaches_asyncpg_in_a_task_of_its_own(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg's pool enters ``asyncio.timeout`` scopes, which must belong to the task that
    leaves them: eager work must have left the caller's task before it acquires."""
    storage = PostgresStorage(pg_url)
    await storage.open()
    try:
        import asyncpg.pool

        seen: list[asyncio.Task[object] | None] = []
        real = asyncpg.pool.Pool.acquire

        def acquire(self: object, *args: object, **kwargs: object) -> object:
            seen.append(asyncio.current_task())
            return real(self, *args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(asyncpg.pool.Pool, "acquire", acquire)
        caller = asyncio.current_task()
        for _ in range(3):
            assert await within(2.0, storage.count_accounts(1400000001), eager=True) == 0
            assert await within(2.0, storage.existing(1400000001, ["a", "b"]), eager=True) == set()
        assert len(seen) == 6 and all(task is not caller for task in seen)
    finally:
        await storage.close()


@EAGER
async def test_an_error_raised_before_any_wait_reaches_the_caller(eager: bool) -> None:
    async def work() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await within(1.0, work(), eager=eager)


@EAGER
async def test_work_that_waits_returns_its_value(eager: bool) -> None:
    async def work() -> str:
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.01)  # a future
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, "done")
        return await fut

    assert await within(1.0, work(), eager=eager) == "done"


@EAGER
async def test_an_error_after_a_wait_reaches_the_caller(eager: bool) -> None:
    async def work() -> None:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, fut.set_exception, ValueError("late"))
        await fut

    with pytest.raises(ValueError, match="late"):
        await within(1.0, work(), eager=eager)


@EAGER
async def test_at_the_deadline_the_caller_is_answered_and_the_work_goes_on(eager: bool) -> None:
    finished = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.2)
        finished.set()

    with pytest.raises(TimeoutError):
        await within(0.02, work(), eager=eager)
    assert not finished.is_set()
    await asyncio.wait_for(finished.wait(), 2)


@EAGER
async def test_cancelling_the_work_task_cancels_the_work_where_it_waits(eager: bool) -> None:
    cleaned = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cleaned.set()
            raise

    with pytest.raises(TimeoutError):
        await within(0.02, work(), eager=eager)
    for task in asyncio.all_tasks():  # the detached work: cancel it as a shutdown would
        if task is not asyncio.current_task():
            task.cancel()
    await asyncio.wait_for(cleaned.wait(), 2)
