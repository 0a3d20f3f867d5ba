"""Helpers shared by the command groups."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import click

from .. import usersig
from ..config import default_db, redact_url
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
            if isinstance(exc.__cause__, OSError) and db.startswith("sqlite"):  # its file or
                # folder cannot be made
                raise click.ClickException(unusable_db(db, exc.__cause__)) from None
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # the database's folder cannot be made (SQLite)
            raise click.ClickException(unusable_db(db, exc)) from None
        try:
            return await work(storage)
        finally:
            await storage.close()
    return asyncio.run(run())


def unusable_db(db: str, exc: OSError) -> str:
    """One line: the database that cannot be used, where, why, and what to do."""
    where = exc.filename or redact_url(db)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        why = "a file is in the way where its folder should be"
    else:
        why = (exc.strerror or str(exc)).lower()
    return (f"cannot use the database {redact_url(db)}: {where}: {why}; give --db (or "
            "TIMSERVER_DB) a path in a folder you can write")


def curl_example(base_url: str, sdkappid: int, key: str, admin: str,
                 cacert: Path | None = None) -> str:
    """A ready-to-paste curl command calling account_check as ``admin`` (trusting ``cacert``,
    the local CA of ``serve --tls self-signed``)."""
    sig = usersig.generate(sdkappid, key, admin, now=int(Clock().now()))
    url = (f"{base_url}/v4/im_open_login_svc/account_check?sdkappid={sdkappid}"
           f"&identifier={quote(admin, safe='')}&usersig={sig}&random={secrets.randbelow(2**32)}"
           f"&contenttype=json")
    body = json.dumps({"CheckItem": [{"UserID": admin}, {"UserID": "UserID_1"}]},
                      separators=(",", ":"), ensure_ascii=False)
    trust = f"--cacert {shlex.quote(str(cacert))} " if cacert is not None else ""
    return f"curl -s {trust}-X POST {shlex.quote(url)} -d {shlex.quote(body)}"
