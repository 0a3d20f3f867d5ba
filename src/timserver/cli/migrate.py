"""``timserver migrate``: apply the schema migrations to a database."""

from __future__ import annotations

import click

from ..config import redact_url
from ..storage import Storage
from ._common import db_option, with_storage


@click.command()
@db_option
def migrate(db: str) -> None:
    """Apply pending schema migrations (serve also applies them when it starts)."""
    async def work(storage: Storage) -> None:  # opening a storage migrates it
        await storage.ping()
    with_storage(db, work)
    click.echo(f"{redact_url(db)}: schema up to date")
