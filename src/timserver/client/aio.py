"""``AsyncClient``: the asyncio client (httpx.AsyncClient). Concurrent tasks share its pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar, overload

import httpx
from msgspec import Struct

from ..protocol.commands import Command
from . import bulk
from ._base import HEADERS, BaseClient
from ._exceptions import ApiError
from ._methods import AsyncMethod, Commands

ReqT = TypeVar("ReqT", bound=Struct)
RespT = TypeVar("RespT", bound=Struct)


class AsyncClient(Commands, BaseClient):
    """Tencent IM account REST API client for asyncio; the same API as :class:`Client`, awaited.

    Use it in an ``async with`` block, or await :meth:`aclose`.
    """

    _method_type = AsyncMethod

    def __init__(self, sdkappid: int, key: str, admin: str, endpoint: str, *,
                 transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        super().__init__(sdkappid, key, admin, endpoint, **options)
        self._http = httpx.AsyncClient(
            transport=transport, headers=HEADERS, timeout=httpx.Timeout(self.timeout, pool=None),
            limits=httpx.Limits(max_connections=None,
                                max_keepalive_connections=max(20, 2 * self.concurrency)))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @overload
    async def call(self, command: Command[ReqT, RespT],
                   request: ReqT | Mapping[str, Any] | None = None, /, **fields: Any) -> RespT: ...
    @overload
    async def call(self, command: str, request: Struct | Mapping[str, Any] | None = None, /,
                   **fields: Any) -> Any: ...

    async def call(self, command: Any, request: Any = None, /, **fields: Any) -> Any:
        """Send one command (a ``Command`` of the table or its name), paced, with retries."""
        cmd = self._command(command)
        body = self._encode(cmd, request, fields)
        flow = self._flow(cmd)  # the retry loop both clients share (client/_base.py)
        step = next(flow)
        try:
            while True:
                if isinstance(step, str):
                    failed: BaseException | None = None
                    try:
                        response = await self._http.post(step, content=body)
                    except BaseException as exc:  # the flow counts the call done, may retry
                        failed = exc
                    # Resumed outside the handler: what it raises then has no stray context.
                    step = flow.send(response) if failed is None else flow.throw(failed)
                else:
                    await asyncio.sleep(step)
                    step = next(flow)
        except StopIteration as done:
            return done.value

    # --- bulk helpers ---------------------------------------------------------------------------

    async def check_accounts(self, user_ids: Iterable[str],
                             **options: Any) -> list[bulk.AccountResult]:
        """account_check over any number of UserIDs: a result per UserID, in order."""
        return await self._bulk(bulk.CHECK, user_ids, **options)

    async def import_accounts(self, accounts: Iterable[str | bulk.Account | Mapping[str, Any]],
                              **options: Any) -> list[bulk.AccountResult]:
        """multiaccount_import over any number of accounts (UserIDs, dicts or ``Account``)."""
        return await self._bulk(bulk.IMPORT, accounts, **options)

    async def delete_accounts(self, user_ids: Iterable[str],
                              **options: Any) -> list[bulk.AccountResult]:
        """account_delete over any number of UserIDs: a result per UserID, in order."""
        return await self._bulk(bulk.DELETE, user_ids, **options)

    async def _bulk(self, op: bulk.Operation[Any], items: Iterable[Any], *,
                    batch_size: int | None = None, concurrency: int | None = None,
                    skip_batches: Collection[int] = (), on_batch: bulk.OnBatch | None = None,
                    collect: bool = True) -> list[bulk.AccountResult]:
        todo, count = bulk.numbered_batches(op, items, bulk.check_size(op, batch_size),
                                            skip_batches)
        return await self._run_batches(op, todo, count, concurrency=concurrency,
                                       on_batch=on_batch, collect=collect)

    async def _run_batches(self, op: bulk.Operation[Any], todo: bulk.Batches, count: int | None,
                           *, concurrency: int | None = None,
                           on_batch: bulk.OnBatch | None = None,
                           collect: bool = True) -> list[bulk.AccountResult]:
        """Send the batches of ``todo`` (from ``bulk.numbered_batches``; ``count`` of them when
        known), ``concurrency`` at once, each through ``op``'s plan (also ``jobs.arun``'s engine)."""
        done: dict[int, list[bulk.AccountResult]] = {}

        async def worker() -> None:
            for index, chunk in todo:  # tasks share the iterator: each batch is taken once
                results = await self._drive(op.plan(chunk))
                if collect:
                    done[index] = results
                if on_batch is not None:
                    on_batch(index, results)

        tasks = [asyncio.create_task(worker())
                 for _ in range(bulk.workers(concurrency or self.concurrency, count))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [r for index in sorted(done) for r in done[index]]

    async def _drive(self, plan: bulk.Plan) -> list[bulk.AccountResult]:
        try:
            calls = next(plan)
            while True:
                calls = plan.send(await _all(self._outcome(call) for call in calls))
        except StopIteration as finished:
            return finished.value

    async def _outcome(self, call: bulk.Call) -> Any:
        try:
            return await self.call(call.command, call.request)
        except ApiError as exc:
            return exc


async def _all(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Await them all; if one raises, cancel the others (no call is left running unseen)."""
    tasks = [asyncio.ensure_future(co) for co in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


__all__: Sequence[str] = ["AsyncClient"]
