"""``timserver accounts load FILE --sdkappid N``: put accounts straight into the database.

For migrations and test set-ups of millions of accounts: no API, no UserSig, no rate limit. It
writes through the storage (``Storage.bulk_load``): batched transactions on SQLite, COPY on
PostgreSQL; a server using the same database may keep running.

FILE is read as ``timserver accounts import`` reads it (CSV with a ``UserID,Nick,FaceUrl``
header, NDJSON, or one UserID a line; ``-`` is stdin), but as a stream: a file of ten million
accounts is never held in memory. Rows that are not valid accounts (docs/protocol.md §7.7) are skipped and
written with the reason to ``FILE.load-failed.csv``. Exit status: 0 all rows loaded, 1 some rows
were skipped, 2 usage error.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from ..accountfiles import InputError, iter_numbered_accounts
from ..protocol import messages as m
from ..service.rules import profile_problem, userid_problem
from ..storage import AccountWrite, Storage, StorageError
from ._common import db_option, with_storage
from .accounts import EXIT_FAILED, _progress


def read_rows(stream: IO[bytes], name: str | None = None) -> Iterator[tuple[int, m.AccountListItem]]:
    """(line number, account) for each account of ``stream``, as it is read: the one reader of
    account files (``timserver.accountfiles``: CSV, NDJSON or one UserID a line; ``name``, the
    file's, tells the format by its extension)."""
    return iter_numbered_accounts(stream, name=name)


def _count_lines(path: str) -> int | None:
    """Lines of a regular file (for the progress bar's total), quickly; None for stdin."""
    if path == "-":
        return None
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
    return count


class Rejects:
    """Rows that are not valid accounts: counted, the first few kept, all written to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.first: list[tuple[int, str, str]] = []
        self._file: Any = None
        self._writer: Any = None

    def add(self, line: int, user_id: str, reason: str) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append((line, user_id, reason))
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["Line", "UserID", "Reason"])
        self._writer.writerow([line, user_id, reason])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def valid_rows(rows: Iterator[tuple[int, m.AccountListItem]],
               rejects: Rejects) -> Iterator[AccountWrite]:
    for line, item in rows:
        problem = (userid_problem(item.UserID) or profile_problem("Nick", item.Nick)
                   or profile_problem("FaceUrl", item.FaceUrl))
        if problem:
            rejects.add(line, item.UserID, problem)
            continue
        yield AccountWrite(item.UserID, None if item.Nick is m.UNSET else item.Nick,
                           None if item.FaceUrl is m.UNSET else item.FaceUrl)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@db_option
@click.option("--sdkappid", type=int, required=True, help="The app the accounts belong to.")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=50_000,
              show_default=True, help="Accounts per transaction.")
@click.option("--failed", "failed_path", metavar="PATH",
              help="Where to write skipped rows with the reason [default: FILE.load-failed.csv].")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar (on stderr).")
def load(file: str, db: str, sdkappid: int, batch_size: int, failed_path: str | None,
         progress: bool) -> None:
    """Load the accounts of FILE straight into the database (no API): for migrations.

    Existing accounts are updated as an import would (a given Nick/FaceUrl replaces the stored
    one). Each batch is its own transaction; rerunning an interrupted load is safe.
    """
    if file != "-" and not os.path.isfile(file):
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    rejects = Rejects(Path(failed_path or (f"{file}.load-failed.csv" if file != "-"
                                           else "timserver-load-failed.csv")))
    total = _count_lines(file)

    async def work(storage: Storage) -> tuple[int, int, float]:
        app = await storage.get_app(sdkappid)
        if app is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid} in this database: "
                                       f"create it first (timserver app create --sdkappid "
                                       f"{sdkappid})")
        if app.edition == "trial":
            raise click.ClickException(
                f"app {sdkappid} is a trial app, which holds at most 100 accounts: load skips "
                "that cap, so import through the API instead (timserver accounts import)")
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")
        bar = _progress(progress)
        task = bar.add_task("Loading", total=total)
        loaded = 0

        def advance(rows: int) -> None:
            nonlocal loaded
            loaded += rows
            bar.advance(task, rows)

        started = time.monotonic()
        try:
            with bar:
                created = await storage.bulk_load(
                    sdkappid, valid_rows(read_rows(stream, None if file == "-" else file),
                                         rejects), batch_size=batch_size, progress=advance)
                bar.update(task, total=loaded, completed=loaded)
        except InputError as exc:
            raise click.ClickException(f"{file}: {exc} ({loaded:,} rows loaded before it)") \
                from None
        except StorageError as exc:
            raise click.ClickException(f"the database failed: {exc} ({loaded:,} rows loaded "
                                       "before it; rerun to finish)") from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
            rejects.close()
        return loaded, created, time.monotonic() - started

    loaded, created, seconds = with_storage(db, work)
    rate = loaded / seconds if seconds > 0 else 0.0
    click.echo(f"load: {loaded:,} accounts into app {sdkappid} in {seconds:.1f} s "
               f"({rate:,.0f} accounts/s): {created:,} new, {loaded - created:,} already there",
               err=True)
    if rejects.count:
        shown = "; ".join(f"line {line}: {uid!r}: {why}" for line, uid, why in rejects.first)
        click.echo(f"  skipped {rejects.count:,} rows that are not valid accounts ({shown}"
                   f"{' ...' if rejects.count > len(rejects.first) else ''}); all are in "
                   f"{rejects.path}", err=True)
        sys.exit(EXIT_FAILED)


__all__ = ["InputError", "load", "read_rows"]
