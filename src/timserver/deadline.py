"""Deadlines that hold even when the work under them does not stop: ``within`` and its helpers.

The only module that knows about tasks and timeouts. Used by the request pipeline (a call's
deadline: 70169) and by plugins (the emulator's bounded refresh), so it sits below both.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("timserver.deadline")

T = TypeVar("T")


async def within(seconds: float, work: Coroutine[Any, Any, T], *, eager: bool = False) -> T:
    """``work``'s result, or TimeoutError after ``seconds``, whatever ``work`` is doing then.

    ``asyncio.timeout`` would cancel ``work`` and then wait for its clean-up, and a database
    driver's clean-up (returning a connection to its pool over a stalled network) can take far
    longer than the deadline. So ``work`` runs as its own task, and at the deadline the caller is
    answered while the task finishes, or fails, on its own. A write that completes after its
    deadline is harmless: the caller was told 70169 (retry), and every write is idempotent.

    With ``eager``, ``work`` starts inline and becomes a task only when it first waits: what
    never waits (an inline SQLite read) costs no task and no turns of the event loop, and could
    not have been interrupted anyway. Only for work that uses nothing bound to the current task
    before its first wait (``asyncio.timeout``, which a database driver may enter, is): that
    part runs in the caller's task, the rest in another. ``storage.capabilities.runs_inline`` says so.
    """
    if eager:
        try:
            pending = work.send(None)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]
        task = asyncio.ensure_future(_go_on(work, pending))
    else:
        task = asyncio.ensure_future(work)
    # asyncio.wait((task,), timeout=seconds), with less machinery: one waiter, one timer.
    waiter = task.get_loop().create_future()
    wake = functools.partial(_wake, waiter)
    timer = task.get_loop().call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    if not task.done():
        task.add_done_callback(_forget)
        raise TimeoutError
    return task.result()


def _wake(waiter: asyncio.Future[None], *_: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _go_on(work: Coroutine[Any, Any, T], pending: Any) -> T:
    return await Started(work, pending)


class Started:
    """Awaiting it drives a coroutine that was started by hand and is waiting for ``pending``
    (what its first ``send`` yielded), exactly as a task would have gone on driving it."""

    def __init__(self, work: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.work, self.pending = work, pending

    def __await__(self) -> Any:
        work, pending = self.work, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancelled or closed: pass it on to the coroutine
                step, arg = work.throw, exc
            else:
                step, arg = work.send, sent
            try:
                pending = step(arg)
            except StopIteration as finished:
                return finished.value


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a call's work failed after its deadline: %r", task.exception())
