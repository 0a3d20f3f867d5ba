"""Helpers shared by the command groups."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

import click

from .. import usersig
from ..config import default_db
from ..service.clock import Clock
from ..storage import Storage, StorageError, make_storage

T = TypeVar("T")

db_option = click.option(
    "--db", "db", default=default_db, show_default="$TIMSERVER_DB or the data folder's file",
    envvar="TIMSERVER_DB", help="Database URL, e.g. sqlite:///path/to/timserver.db.")


def with_storage(db: str, work: Callable[[Storage], Awaitable[T]]) -> T:
    """Open the database, run ``work`` on it, close it; errors become CLI errors."""
    async def run() -> T:
        try:
            storage = make_storage(db)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            await storage.open()
        except StorageError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            return await work(storage)
        finally:
            await storage.close()
    return asyncio.run(run())


def curl_example(base_url: str, sdkappid: int, key: str, admin: str) -> str:
    """A ready-to-paste curl command calling account_check as ``admin``."""
    sig = usersig.generate(sdkappid, key, admin, now=int(Clock().now()))
    url = (f"{base_url}/v4/im_open_login_svc/account_check?sdkappid={sdkappid}"
           f"&identifier={quote(admin, safe='')}&usersig={sig}&random={secrets.randbelow(2**32)}"
           f"&contenttype=json")
    body = json.dumps({"CheckItem": [{"UserID": admin}, {"UserID": "UserID_1"}]},
                      separators=(",", ":"), ensure_ascii=False)
    return f"curl -s -X POST {shlex.quote(url)} -d {shlex.quote(body)}"
