"""The SDK's calls cost no import each (issue 15, item 9b): httpcore looks for ``sniffio`` on
every async request, and when it is not installed that is a failed import, a search of
sys.path, each time (about 1 ms of CPU per call, a tenth of a bulk import's client CPU)."""

from __future__ import annotations

import sys
from typing import Any

from sdk_support import ImApp


class CountingFinder:
    """A meta-path finder that finds nothing and counts how often an import searched."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.searched.append(name)
        return None


async def test_async_calls_do_not_search_for_modules(im: ImApp) -> None:
    body = {"CheckItem": [{"UserID": "a"}]}
    async with im.aclient(rates={"account_check": 0}) as client:
        await client.account_check(body)  # the first call may import what it needs, once
        finder = CountingFinder()
        sys.meta_path.insert(0, finder)
        try:
            for _ in range(20):
                await client.account_check(body)
        finally:
            sys.meta_path.remove(finder)
    assert finder.searched == []
