"""``timserver accounts``: import, check, delete accounts in bulk; kick one. Through the SDK, so
against timserver or Tencent's own endpoint alike.

FILE is CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one UserID a line; ``-`` is stdin.
Import and delete keep a small state file (``FILE.import-state``) with the batches finished so far:
after an interruption, ``--resume`` skips them. Exit status: 0 every account succeeded, 1 some
failed (listed with their codes in ``FILE.import-failed.csv``), 2 usage error, 3 the run stopped
before the end (the error is printed; rerun with ``--resume``).
"""

from __future__ import annotations

import asyncio
import csv
import gc
import hashlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from ..protocol.commands import BY_NAME

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..client import AccountResult, AsyncClient

EXIT_FAILED = 1
EXIT_STOPPED = 3
NOT_FOUND = 70107
STATE_FORMAT = "timserver-accounts-state"


# --- connection options (flags or TIMSERVER_* variables) --------------------------------------


def _rates(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, int]:
    rates: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or name not in BY_NAME or not number.isdigit():
            raise click.BadParameter(f"{value!r}: expected COMMAND=CALLS_PER_SECOND with COMMAND "
                                     f"one of {', '.join(BY_NAME)} (0 = not paced)")
        rates[name] = int(number)
    return rates


def connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--endpoint", envvar="TIMSERVER_ENDPOINT", required=True, show_envvar=True,
                     help="A region (china, singapore, seoul, frankfurt, mumbai, usa, jakarta, "
                          "tokyo) or a base URL such as http://127.0.0.1:8080."),
        click.option("--sdkappid", envvar="TIMSERVER_SDKAPPID", type=int, required=True,
                     show_envvar=True, help="The app's SDKAppID."),
        click.option("--key", envvar="TIMSERVER_KEY", required=True, show_envvar=True,
                     help="The app's secret key (prefer the variable: flags show in `ps`)."),
        click.option("--admin", envvar="TIMSERVER_ADMIN", default="administrator",
                     show_default=True, show_envvar=True, help="The admin identifier to call as."),
        click.option("--rate", "rates", multiple=True, metavar="COMMAND=N", callback=_rates,
                     help="Pace COMMAND at N calls/s instead of its default limit; repeatable."),
        click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
                     help="Batches in flight at once."),
        click.option("--retries", type=click.IntRange(0, 100), default=5, show_default=True,
                     help="Retries of a call on a retryable code or a network error."),
        click.option("--timeout", type=click.FloatRange(0.1), default=10.0, show_default=True,
                     help="Seconds to wait for one answer."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_client(conn: dict[str, Any]) -> AsyncClient:
    from ..client import AsyncClient, Retry

    try:
        return AsyncClient(conn["sdkappid"], conn["key"], conn["admin"], conn["endpoint"],
                           rates=conn["rates"], concurrency=conn["concurrency"],
                           retry=Retry(attempts=conn["retries"] + 1), timeout=conn["timeout"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _split(kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("endpoint", "sdkappid", "key", "admin", "rates", "concurrency", "retries", "timeout")
    return {n: kwargs.pop(n) for n in names}


# --- the state file: which batches are finished ------------------------------------------------


@dataclass
class Journal:
    """An append-only NDJSON file: a header naming the run, then one line per finished batch.

    Each line is written with one ``write`` and flushed, so a killed process loses at most the
    batches in flight; a torn last line is ignored on resume.
    """

    path: Path | None
    header: dict[str, Any]
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)
    _file: Any = None

    @classmethod
    def open(cls, path: Path | None, header: dict[str, Any], resume: bool) -> Journal:
        journal = cls(path, header)
        if path is None:
            return journal
        if resume and path.exists():
            journal.finished = _read_state(path, header)
            journal._file = path.open("a", encoding="utf-8")
        else:
            journal._file = path.open("w", encoding="utf-8")
            journal._write(header)
        return journal

    def record(self, index: int, results: list[AccountResult]) -> None:
        entry = {"batch": index, "ok": sum(r.ok for r in results),
                 "failed": [[r.user_id, r.code, r.info] for r in results if not r.ok],
                 "status": Counter(r.status for r in results if r.status)}
        self.finished[index] = entry
        if self._file is not None:
            self._write(entry)

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self, complete: bool) -> None:
        if self._file is not None:
            self._file.close()
            if complete and self.path is not None:
                self.path.unlink(missing_ok=True)


def _read_state(path: Path, header: dict[str, Any]) -> dict[int, dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    try:
        found = json.loads(lines[0])
    except ValueError:
        found = None
    if found != header:
        raise click.UsageError(
            f"{path} was written by another run (a different input, command or batch size): "
            "remove it, or run without --resume to start over")
    finished = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
            finished[int(entry["batch"])] = entry
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line: that batch is done again
    return finished


# --- the run ---------------------------------------------------------------------------------


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"{file}: {exc.strerror}", param_hint="FILE") from None


def _progress(enabled: bool) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} accounts/s" if speed else "- accounts/s", style="cyan")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


@dataclass
class Outcome:
    total: int
    earlier: int = 0  # accounts in batches finished by an earlier run
    done: int = 0  # accounts finished in this run
    stopped: BaseException | None = None
    seconds: float = 0.0


def run_bulk(kind: str, file: str, conn: dict[str, Any], *, resume: bool, state: str | None,
             failed_path: str | None, batch_size: int, progress: bool,
             missing_ok: bool = False,
             on_results: Callable[[list[AccountResult]], None] | None = None) -> None:
    """import / delete / check FILE: batches, journal, progress bar, summary, failures file."""
    from ..client import InputError, TimClientError, parse_accounts

    data = _read_input(file)
    try:
        accounts = parse_accounts(data)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None
    items: list[Any] = accounts if kind == "import" else [a.UserID for a in accounts]
    # The input lives as long as the run: spare the collector rescanning it, as its pauses
    # (tens of ms for a million accounts) would bunch up calls and upset the pacing.
    gc.freeze()
    header = {"format": STATE_FORMAT, "command": kind, "batch_size": batch_size,
              "accounts": len(items), "input_sha256": hashlib.sha256(data).hexdigest()}
    state_path = Path(state) if state else (Path(f"{file}.{kind}-state")
                                            if file != "-" and kind != "check" else None)
    if resume and state_path is None:
        raise click.UsageError("--resume needs a state file: give --state PATH (stdin has none "
                               "next to it)")
    if state_path is not None and state_path.exists() != resume:
        click.echo(f"{state_path} from an earlier run is replaced (--resume continues it)."
                   if not resume else f"No state file {state_path}: starting from the beginning.",
                   err=True)
    client = make_client(conn)
    try:
        journal = Journal.open(state_path, header, resume)
    except OSError as exc:
        raise click.ClickException(f"cannot write the state file {state_path}: "
                                   f"{exc.strerror}") from None
    batches = math.ceil(len(items) / batch_size)
    outcome = Outcome(total=len(items))
    outcome.earlier = sum(len(items[i * batch_size:(i + 1) * batch_size]) for i in journal.finished)
    bar = _progress(progress)
    verb = {"import": "Importing", "delete": "Deleting", "check": "Checking"}[kind]
    task = bar.add_task(verb, total=len(items), completed=outcome.earlier)

    def on_batch(index: int, results: list[AccountResult]) -> None:
        if missing_ok:  # the account is gone, which is what delete is for
            results = [msgspec.structs.replace(r, code=0, info="") if r.code == NOT_FOUND else r
                       for r in results]
        journal.record(index, results)
        outcome.done += len(results)
        bar.advance(task, len(results))
        if on_results is not None:
            on_results(results)

    async def go() -> None:
        async with client:
            method: Callable[..., Awaitable[list[AccountResult]]] = getattr(
                client, f"{kind}_accounts")  # import_accounts, delete_accounts, check_accounts
            await method(items, batch_size=batch_size, skip_batches=set(journal.finished),
                         on_batch=on_batch)

    started = time.monotonic()
    with bar:
        try:
            _run(go())
        except (TimClientError, KeyboardInterrupt) as exc:  # the run cannot go on
            outcome.stopped = exc
    outcome.seconds = time.monotonic() - started
    complete = outcome.stopped is None and len(journal.finished) == batches
    journal.close(complete)
    _summary(kind, outcome, journal, client, file, failed_path, state_path)
    if outcome.stopped is not None:
        sys.exit(EXIT_STOPPED)
    if any(entry["failed"] for entry in journal.finished.values()):
        sys.exit(EXIT_FAILED)


def _run(coro: Any) -> None:
    try:
        import uvloop  # faster event loop when installed (uvicorn[standard] brings it)
    except ImportError:  # pragma: no cover
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _summary(kind: str, outcome: Outcome, journal: Journal, client: AsyncClient, file: str,
             failed_path: str | None, state_path: Path | None) -> None:
    def say(text: str) -> None:
        click.echo(text, err=True)

    failed = [f for i in sorted(journal.finished) for f in journal.finished[i]["failed"]]
    finished = sum(e["ok"] + len(e["failed"]) for e in journal.finished.values())
    rate = outcome.done / outcome.seconds if outcome.seconds > 0 else 0.0
    past = f" ({outcome.earlier:,} by an earlier run)" if outcome.earlier else ""
    say(f"{kind}: {finished:,} of {outcome.total:,} accounts done{past}; this run "
        f"{outcome.done:,} in {outcome.seconds:.1f} s ({rate:,.0f} accounts/s)")
    say(f"  succeeded: {finished - len(failed):,}   failed: {len(failed):,}")
    if kind == "check":
        status: Counter[str] = Counter()
        for entry in journal.finished.values():
            status.update(entry["status"])
        say(f"  Imported: {status['Imported']:,}   NotImported: {status['NotImported']:,}")
    if client.stats.retries:
        why = ", ".join(f"{reason} ×{n}" for reason, n in client.stats.retried.most_common())
        say(f"  retries: {client.stats.retries} ({why})")
    if failed:
        codes = ", ".join(f"{code} ×{n}" for code, n in Counter(f[1] for f in failed).most_common())
        target = failed_path or (f"{file}.{kind}-failed.csv" if file != "-"
                                 else f"timserver-{kind}-failed.csv")
        with open(target, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["UserID", "ErrorCode", "ErrorInfo"])
            writer.writerows(failed)
        say(f"  failed accounts ({codes}) written to {target}")
    if outcome.stopped is not None:
        reason = ("interrupted" if isinstance(outcome.stopped, KeyboardInterrupt)
                  else f"stopped: {outcome.stopped}")
        say(f"{kind} {reason}")
        if state_path is not None:
            say(f"  finished batches are in {state_path}: rerun with --resume to continue")


# --- the commands ----------------------------------------------------------------------------


def bulk_options(kind: str, resumable: bool = True) -> Callable[[Callable[..., Any]], Any]:
    def decorate(f: Callable[..., Any]) -> Any:
        f = click.option("--progress/--no-progress", default=True, show_default=True,
                         help="Show a progress bar (on stderr).")(f)
        f = click.option("--batch-size", type=click.IntRange(1, 100), default=100,
                         show_default=True, help="Accounts per call.")(f)
        f = click.option("--failed", "failed_path", metavar="PATH",
                         help=f"Where to write failed accounts with their codes "
                              f"[default: FILE.{kind}-failed.csv].")(f)
        if resumable:
            f = click.option("--state", metavar="PATH",
                             help=f"The state file [default: FILE.{kind}-state].")(f)
            f = click.option("--resume", is_flag=True,
                             help="Continue an interrupted run: skip the batches it finished.")(f)
        f = click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))(f)
        return connection_options(f)
    return decorate


@click.group()
def accounts() -> None:
    """Import, check, delete accounts in bulk, and kick one (timserver or Tencent).

    The connection comes from flags or TIMSERVER_ENDPOINT, TIMSERVER_SDKAPPID, TIMSERVER_KEY,
    TIMSERVER_ADMIN. FILE is CSV (header UserID,Nick,FaceUrl), NDJSON, or one UserID per line;
    - reads stdin. Exit status: 0 all succeeded, 1 some accounts failed, 3 the run stopped early.
    """


@accounts.command("import")
@bulk_options("import")
def import_(file: str, resume: bool, state: str | None, failed_path: str | None,
            batch_size: int, progress: bool, **conn: Any) -> None:
    """Import the accounts of FILE (multiaccount_import, 100 a call)."""
    run_bulk("import", file, _split(conn), resume=resume, state=state, failed_path=failed_path,
             batch_size=batch_size, progress=progress)


@accounts.command()
@bulk_options("delete")
@click.option("--missing-ok", is_flag=True,
              help="An account that does not exist (70107) is not a failure.")
def delete(file: str, resume: bool, state: str | None, failed_path: str | None, batch_size: int,
           progress: bool, missing_ok: bool, **conn: Any) -> None:
    """Delete the accounts of FILE (account_delete, 100 a call)."""
    run_bulk("delete", file, _split(conn), resume=resume, state=state, failed_path=failed_path,
             batch_size=batch_size, progress=progress, missing_ok=missing_ok)


@accounts.command()
@bulk_options("check", resumable=False)
@click.option("--output", "-o", metavar="PATH",
              help="Write UserID,AccountStatus for every account to PATH (- for stdout).")
def check(file: str, failed_path: str | None, batch_size: int, progress: bool,
          output: str | None, **conn: Any) -> None:
    """Check which accounts of FILE are imported (account_check, 100 a call)."""
    out = None
    if output == "-":
        out = sys.stdout
    elif output:
        out = open(output, "w", encoding="utf-8", newline="")
    writer = csv.writer(out) if out is not None else None
    if writer is not None:
        writer.writerow(["UserID", "AccountStatus"])

    def write(results: list[AccountResult]) -> None:
        if writer is not None:
            writer.writerows([r.user_id, r.status or ""] for r in results)
    try:
        run_bulk("check", file, _split(conn), resume=False, state=None,
                 failed_path=failed_path, batch_size=batch_size, progress=progress,
                 on_results=write)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()


@accounts.command()
@click.argument("userid")
@connection_options
def kick(userid: str, **conn: Any) -> None:
    """Invalidate USERID's login state: its UserSigs signed until now are refused."""
    from ..client import TimClientError

    client = make_client(_split(conn))

    async def go() -> None:
        async with client:
            await client.kick(UserID=userid)
    try:
        _run(go())
    except TimClientError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"Kicked {userid}: UserSigs signed until now are refused.")


__all__ = ["accounts"]
