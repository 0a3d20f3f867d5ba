"""``timserver export FILE`` / ``timserver import FILE``, and ``serve --import`` /
``serve --export-on-exit``: the whole installation as a portable JSON Lines file
(``timserver.portable``; docs/emulator.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .. import portable
from ._common import db_option, with_storage


def export_to(db: str, path: str) -> portable.Counts:
    """Write the database to ``path``, created readable by its owner only (it holds the apps'
    keys). The file appears whole or not at all: written beside it, then renamed."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise click.ClickException(f"cannot export to {path}: no folder {folder}")
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
            counts = with_storage(db, lambda storage: portable.export_state(storage, out))
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
        raise
    return counts


def import_from(db: str, path: str) -> portable.Counts:
    """Check the whole file, then apply it; a bad file is one error and changes nothing."""
    try:
        with open(path, "rb") as lines:
            portable.check_state(lines)
        with open(path, "rb") as lines:
            return with_storage(db, lambda storage: portable.apply_state(storage, lines))
    except portable.PortableError as exc:
        raise click.ClickException(f"cannot import {path}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot import {path}: {exc.strerror or exc}") from None


@click.command("export")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@db_option
def export(path: str, db: str) -> None:
    """Write every app, account, kick, fault rule and clock offset to FILE (JSON Lines).

    FILE holds the apps' secret keys: it is created readable by you only. `timserver import
    FILE` loads it into any database, SQLite or PostgreSQL.
    """
    counts = export_to(db, path)
    click.echo(f"Exported {counts.summary()} to {path}.")


@click.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@db_option
def import_(path: str, db: str) -> None:
    """Load a file written by `timserver export` into the database.

    The whole file is checked first; a bad or cut-short file changes nothing. Apps are created or
    updated to the file's settings, accounts and kicks written as the file has them (other
    accounts stay), each app's fault rules replaced by the file's, the clock offsets set.
    """
    counts = import_from(db, path)
    click.echo(f"Imported {counts.summary()} from {path}.")


# --- serve --import / --export-on-exit --------------------------------------------------------


def portable_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``serve``'s options (they arrive in its ``**emulator`` as ``import_file`` and
    ``export_on_exit``)."""
    command = click.option(
        "--export-on-exit", "export_on_exit", metavar="FILE", type=click.Path(dir_okay=False),
        help="On SIGTERM or SIGINT, after the last answer, write the state to FILE "
             "(as `timserver export`).")(command)
    return click.option(
        "--import", "import_file", metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="Load a file of `timserver export` before listening.")(command)


def import_at_start(db: str, options: dict[str, Any]) -> None:
    path = options.pop("import_file", None)
    if path:
        click.echo(f"Imported {import_from(db, path).summary()} from {path}.")


@contextlib.contextmanager
def export_on_exit(db: str, options: dict[str, Any]) -> Iterator[None]:
    """Around the server's run: when it ends by SIGTERM or SIGINT, export to the file, then end
    by that signal as it would have.

    On a signal uvicorn answers what it has, shuts down, puts back the signal handlers it found
    and raises the signal again: the handlers set here are what it finds, so they only note it.
    (With workers, its supervisor takes the signal and returns.) A server that fails to start
    raises instead of returning, and exports nothing.
    """
    path = options.pop("export_on_exit", None)
    if not path:
        yield
        return
    folder = Path(path).parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise click.UsageError(f"--export-on-exit: cannot write into {folder}")
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda sig, frame: caught.append(sig))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counts = export_to(db, path)  # the server has stopped: its last answer is in the database
    click.echo(f"Exported {counts.summary()} to {path}.")
    if caught:
        signal.raise_signal(caught[0])
