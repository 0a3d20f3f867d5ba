"""``Client``: the blocking client (httpx.Client). Thread-safe: threads share its pacing."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar, overload

import httpx
from msgspec import Struct

from ..protocol.commands import Command
from . import bulk
from ._base import HEADERS, BaseClient
from ._exceptions import ApiError
from ._methods import Commands, SyncMethod

ReqT = TypeVar("ReqT", bound=Struct)
RespT = TypeVar("RespT", bound=Struct)


class Client(Commands, BaseClient):
    """Tencent IM account REST API client, blocking.

    ``Client(sdkappid, key, admin, endpoint)``; ``endpoint`` is a region (``"singapore"``) or a
    base URL (``"http://127.0.0.1:8080"``). One method per command (``account_check``, ...),
    returning the command's response struct; failures raise :class:`ApiError` or
    :class:`NetworkError`. Use it in a ``with`` block, or call :meth:`close`.
    """

    _method_type = SyncMethod

    def __init__(self, sdkappid: int, key: str, admin: str, endpoint: str, *,
                 transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        super().__init__(sdkappid, key, admin, endpoint, **options)
        self._http = httpx.Client(
            transport=transport, headers=HEADERS, timeout=httpx.Timeout(self.timeout, pool=None),
            limits=httpx.Limits(max_connections=None,
                                max_keepalive_connections=max(20, 2 * self.concurrency)))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @overload
    def call(self, command: Command[ReqT, RespT], request: ReqT | Mapping[str, Any] | None = None,
             /, **fields: Any) -> RespT: ...
    @overload
    def call(self, command: str, request: Struct | Mapping[str, Any] | None = None, /,
             **fields: Any) -> Any: ...

    def call(self, command: Any, request: Any = None, /, **fields: Any) -> Any:
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
                        response = self._http.post(step, content=body)
                    except BaseException as exc:  # the flow counts the call done, may retry
                        failed = exc
                    # Resumed outside the handler: what it raises then has no stray context.
                    step = flow.send(response) if failed is None else flow.throw(failed)
                else:
                    time.sleep(step)
                    step = next(flow)
        except StopIteration as done:
            return done.value

    # --- bulk helpers ---------------------------------------------------------------------------

    def check_accounts(self, user_ids: Iterable[str], **options: Any) -> list[bulk.AccountResult]:
        """account_check over any number of UserIDs: a result per UserID, in order."""
        return self._bulk(bulk.CHECK, user_ids, **options)

    def import_accounts(self, accounts: Iterable[str | bulk.Account | Mapping[str, Any]],
                        **options: Any) -> list[bulk.AccountResult]:
        """multiaccount_import over any number of accounts (UserIDs, dicts or ``Account``)."""
        return self._bulk(bulk.IMPORT, accounts, **options)

    def delete_accounts(self, user_ids: Iterable[str], **options: Any) -> list[bulk.AccountResult]:
        """account_delete over any number of UserIDs: a result per UserID, in order."""
        return self._bulk(bulk.DELETE, user_ids, **options)

    def _bulk(self, op: bulk.Operation[Any], items: Iterable[Any], *, batch_size: int | None = None,
              concurrency: int | None = None, skip_batches: Collection[int] = (),
              on_batch: bulk.OnBatch | None = None,
              collect: bool = True) -> list[bulk.AccountResult]:
        todo, count = bulk.numbered_batches(op, items, bulk.check_size(op, batch_size),
                                            skip_batches)
        return self._run_batches(op, todo, count, concurrency=concurrency, on_batch=on_batch,
                                 collect=collect)

    def _run_batches(self, op: bulk.Operation[Any], todo: bulk.Batches, count: int | None, *,
                     concurrency: int | None = None, on_batch: bulk.OnBatch | None = None,
                     collect: bool = True) -> list[bulk.AccountResult]:
        """Send the batches of ``todo`` (from ``bulk.numbered_batches``; ``count`` of them when
        known), ``concurrency`` at once, each through ``op``'s plan (also ``jobs.run``'s engine)."""
        done: dict[int, list[bulk.AccountResult]] = {}
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while not stop.is_set():
                    with lock:  # one thread at a time reads the input
                        index, chunk = next(todo, (None, None))
                    if index is None:
                        return
                    results = self._drive(op.plan(chunk))
                    with lock:  # on_batch is never called by two threads at once
                        if collect:
                            done[index] = results
                        if on_batch is not None:
                            on_batch(index, results)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=worker, name=f"timserver-bulk-{n}", daemon=True)
                   for n in range(bulk.workers(concurrency or self.concurrency, count))]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        finally:
            stop.set()
        if errors:
            raise errors[0]
        return [r for index in sorted(done) for r in done[index]]

    def _drive(self, plan: bulk.Plan) -> list[bulk.AccountResult]:
        try:
            calls = next(plan)
            while True:
                calls = plan.send([self._outcome(call) for call in calls])
        except StopIteration as finished:
            return finished.value

    def _outcome(self, call: bulk.Call) -> Any:
        try:
            return self.call(call.command, call.request)
        except ApiError as exc:
            return exc


__all__: Sequence[str] = ["Client"]
