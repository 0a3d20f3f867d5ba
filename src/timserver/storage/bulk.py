"""Bulk loading, shared by the implementations of ``AccountStore.bulk_load``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator

from .base import AccountWrite

Merged = dict[str, tuple[str | None, str | None]]  # UserID → (nick, face_url) of one batch


def merge_batches(rows: Iterable[AccountWrite], batch_size: int) -> Iterator[tuple[Merged, int]]:
    """Batches of ``rows``: one entry per UserID (a later non-None field wins, as a later
    import would), with the number of rows each batch took from the input."""
    merged: Merged = {}
    taken = 0
    for row in rows:
        old = merged.get(row.user_id)
        if old is None:
            merged[row.user_id] = (row.nick, row.face_url)
        else:
            merged[row.user_id] = (row.nick if row.nick is not None else old[0],
                                   row.face_url if row.face_url is not None else old[1])
        taken += 1
        if taken >= batch_size:
            yield merged, taken
            merged, taken = {}, 0
    if taken:
        yield merged, taken


async def pipelined_load(rows: Iterable[AccountWrite], batch_size: int,
                         load: Callable[[Merged], Awaitable[int]],
                         progress: Callable[[int], None] | None) -> int:
    """Run ``load`` on each batch while the next one is read (in a thread): input parsing
    overlaps with the database's work. Returns the sum of what ``load`` returned."""
    batches = merge_batches(rows, batch_size)
    created = 0
    batch = await asyncio.to_thread(next, batches, None)
    while batch is not None:
        work = asyncio.ensure_future(load(batch[0]))
        try:
            following = await asyncio.to_thread(next, batches, None)
        except BaseException:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise
        created += await work
        if progress is not None:
            progress(batch[1])
        batch = following
    return created
