"""``timserver accounts``: import, check, delete accounts in bulk; kick one. Through the SDK, so
against timserver or Tencent's own endpoint alike.

FILE is CSV (header ``UserID,Nick,FaceUrl``), NDJSON, or one UserID a line; ``-`` is stdin. It is
streamed, a batch at a time (a regular file is first counted and checked in a fast pass). Import,
check and delete keep a small state file (``FILE.import-state``) with the batches finished so far:
after an interruption, ``--resume`` skips them. The job itself (batches, state file, resume) is
the SDK's, ``timserver.client.jobs``; this module reads the options and the input, and prints.
Every bad line of a regular file is reported in one pass, before anything is sent;
``--skip-invalid`` sends the others and lists the bad lines in the failed-accounts file. The first
call checks the connection settings: a wrong key, SDKAppID or admin stops the run there, with the
fix, and leaves no state file. Exit status: 0 every account succeeded, 1 some failed (listed with
their codes in ``FILE.import-failed.csv``), 2 usage error, bad input or refused connection
settings (nothing sent), 3 the run stopped before the end (the error is printed; rerun with
``--resume``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from ..protocol.commands import BY_NAME
from ._lazy import LazyGroup

# httpx imports its own command-line tool when the packages it needs are installed (rich,
# pygments, click are): 50 to 140 ms of every run's start-up, for a tool these commands never
# run. None in sys.modules makes that one import fail, which httpx expects (it then defines a
# ``main`` that says its tool is not installed); nothing else of httpx changes.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..client import AccountResult, ApiError, AsyncClient
    from ..client.jobs import JobState, Kind

EXIT_FAILED = 1
EXIT_STOPPED = 3
MAX_BAD_LINES_SHOWN = 50
START_OVER = "remove it, or run without --resume to start over"


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


# --- the input: streamed -----------------------------------------------------------------------


class InputProblem(click.ClickException):
    """The input or the connection settings are wrong: nothing was sent (exit status 2)."""

    exit_code = 2


@dataclass
class BadLines:
    """The lines of the input that are not accounts: all counted, the first ones kept."""

    keep: int | None = MAX_BAD_LINES_SHOWN  # None: all
    count: int = 0
    kept: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, text)

    def __call__(self, number: int, reason: str, text: str) -> None:
        self.count += 1
        if self.keep is None or len(self.kept) < self.keep:
            self.kept.append((number, reason, text))


def _scan(file: str) -> tuple[int, str, BadLines]:
    """A first pass over a regular file: its accounts counted (the progress bar's total), every
    line checked (the bad ones are reported, all of them, before anything is sent) and its
    SHA-256 (the state file's). Constant memory: a line at a time."""
    from ..client import InputError
    from ..client.files import iter_numbered_accounts

    digest = hashlib.sha256()
    bad = BadLines()
    count = 0
    try:
        with open(file, "rb") as f:
            while block := f.read(1 << 20):  # hashed apart, in blocks: a tenth of a line's cost
                digest.update(block)
            f.seek(0)
            for count, _ in enumerate(iter_numbered_accounts(f, on_bad=bad, name=file), 1):  # noqa: B007
                pass
    except OSError as exc:
        raise InputProblem(f"cannot read {file}: {exc.strerror}") from None
    except InputError as exc:  # no line of it can be read (a .csv header without UserID)
        raise InputProblem(f"{file}, {exc}; nothing was sent") from None
    return count, digest.hexdigest(), bad


def _refuse_bad_lines(file: str, bad: BadLines) -> None:
    """Every bad line, one line each, then what to do; nothing was sent."""
    for number, reason, _ in bad.kept:
        click.echo(f"{file}:{number}: {reason}", err=True)
    if bad.count > len(bad.kept):
        click.echo(f"... and {bad.count - len(bad.kept):,} more", err=True)
    lines = (f"{bad.count:,} lines of {file} are not accounts: fix them" if bad.count > 1
             else f"1 line of {file} is not an account: fix it")
    raise InputProblem(f"{lines}, or rerun with --skip-invalid to send the others (the bad lines "
                       "go to the failed-accounts file); nothing was sent")


CHECK_HEADER = b"UserID,AccountStatus\r\n"


class CheckOutput:
    """``check --output``: UserID,AccountStatus rows, written as batches finish. On --resume the
    rows of the batches the earlier run finished are kept: the file is cut back to the end of the
    last batch the state file recorded (rows of batches in flight at the interruption are dropped;
    those batches are checked again) and appended to."""

    def __init__(self, target: str, resumed: bool, out_end: int | None) -> None:
        self.path: str | None = None if target == "-" else target
        if self.path is None:
            if resumed:
                raise click.UsageError("--resume cannot recover the rows the earlier run wrote to "
                                       "stdout: give the check --output PATH")
            self._file: Any = sys.stdout.buffer
            self._file.write(CHECK_HEADER)
            return
        try:
            if resumed:
                self._file = open(self.path, "r+b")
                self._file.truncate(out_end or len(CHECK_HEADER))
                self._file.seek(0, io.SEEK_END)
            else:
                self._file = open(self.path, "wb")
                self._file.write(CHECK_HEADER)
        except FileNotFoundError:
            if resumed:
                raise InputProblem(f"the output of the earlier run, {self.path}, is gone: run "
                                   "without --resume to start over") from None
            raise InputProblem(f"cannot write {self.path}: its folder does not exist") from None
        except OSError as exc:
            raise InputProblem(f"cannot write {self.path}: {exc.strerror}") from None

    def write(self, results: list[AccountResult]) -> int | None:
        """Write the rows of a batch; the bytes written so far (None for stdout)."""
        text = io.StringIO()
        csv.writer(text).writerows([r.user_id, r.status or ""] for r in results)
        self._file.write(text.getvalue().encode("utf-8"))
        self._file.flush()
        return self._file.tell() if self.path is not None else None

    def close(self) -> None:
        if self.path is not None:
            self._file.close()
        else:
            self._file.flush()


# --- the run ---------------------------------------------------------------------------------


class _NoProgress:
    """``--no-progress``: what the commands ask of a progress bar, doing nothing (and without
    importing rich, a tenth of a second of start-up)."""

    is_started = False

    @property
    def live(self) -> _NoProgress:
        return self

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add_task(self, description: str, **fields: Any) -> int:
        return 0

    def update(self, task: int, **fields: Any) -> None:
        pass

    def advance(self, task: int, advance: float = 1) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _progress(enabled: bool) -> Progress | _NoProgress:
    if not enabled:
        return _NoProgress()
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
                    console=Console(stderr=True), transient=False)


@dataclass
class Outcome:
    total: int | None  # None: not known before the end (stdin)
    earlier: int = 0  # accounts in batches finished by an earlier run
    done: int = 0  # accounts finished in this run
    stopped: BaseException | None = None
    seconds: float = 0.0


# Codes of a first call that no retry or resume can fix: the connection settings are wrong.
SETTINGS_FIXES = {
    60006: "TIMSERVER_SDKAPPID (--sdkappid) is not an app of this endpoint",
    70014: "TIMSERVER_SDKAPPID (--sdkappid) is not the app of this key",
    70003: "TIMSERVER_KEY (--key) is not this app's secret key",
    70009: "TIMSERVER_KEY (--key) is not this app's secret key",
    70013: "TIMSERVER_ADMIN (--admin) is not the identifier signed for",
    60010: "TIMSERVER_ADMIN (--admin) is not an admin of this app",
    70403: "TIMSERVER_ADMIN (--admin) is not an admin of this app",
}


async def check_settings(client: AsyncClient, conn: dict[str, Any]) -> None:
    """One account_check of the admin, before any state is written: a wrong key, SDKAppID or
    admin stops the run here with the fix (nothing to resume), not after a batch."""
    from ..client import ApiError

    try:
        await client.account_check(CheckItem=[{"UserID": conn["admin"]}])
    except ApiError as exc:
        if exc.code not in SETTINGS_FIXES:
            raise
        raise InputProblem(f"{settings_fix(exc, conn)}; no account was sent") from None


def settings_fix(exc: ApiError, conn: dict[str, Any]) -> str:
    """The error of a call the connection settings made fail, and which setting to fix."""
    on_timserver = "://" in conn["endpoint"]  # a URL; a region name is Tencent's
    where = (f"`timserver app show {conn['sdkappid']}` prints the key and admins" if on_timserver
             else "Tencent's Chat console shows the key and admins")
    return f"{str(exc).rstrip('.')}. Fix: {SETTINGS_FIXES[exc.code]} ({where})"


def run_bulk(kind: Kind, file: str, conn: dict[str, Any], *, resume: bool, state: str | None,
             failed_path: str | None, batch_size: int, progress: bool,
             missing_ok: bool = False, output: str | None = None,
             skip_invalid: bool = False) -> None:
    """import / delete / check FILE as a job of the SDK (``timserver.client.jobs``): its input
    scanned and read, its state file opened, progress bar, summary, failures file.

    The input is streamed, never held whole: a regular file is read twice (a fast first pass
    counts and checks its accounts, see ``_scan``), stdin once (no total; a bad line stops the run
    where it is, unless ``skip_invalid``).
    """
    from ..client import InputError, TimClientError, iter_accounts, jobs

    refused = BadLines(keep=None)  # --skip-invalid: every bad line, for the failed-accounts file
    if file != "-":
        total, digest, bad = _scan(file)
        if bad.count and not skip_invalid:
            _refuse_bad_lines(file, bad)
    else:
        total, digest = None, None
    identity: dict[str, Any] = {"accounts": total, "input_sha256": digest,
                                "extra": {"output": output} if kind == "check" else None}
    state_path = Path(state) if state else (Path(f"{file}.{kind}-state") if file != "-"
                                            else None)
    if resume and state_path is None:
        raise click.UsageError("--resume needs a state file: give --state PATH (stdin has none "
                               "next to it)")
    client = make_client(conn)
    # In memory until the settings are checked; then the file (an earlier run's is read first).
    job = jobs.JobState.open(None, kind, batch_size, **identity)
    out: CheckOutput | None = None
    outcome = Outcome(total=total)
    bar = _progress(progress)
    verb = {"import": "Importing", "delete": "Deleting", "check": "Checking"}[kind]
    task = bar.add_task(verb, total=total)

    def open_files() -> None:
        """The state file, then check's output (an earlier run's state is read first)."""
        nonlocal job, out
        if state_path is not None and state_path.exists() != resume:
            click.echo(f"{state_path} from an earlier run is replaced (--resume continues it)."
                       if not resume else
                       f"No state file {state_path}: starting from the beginning.", err=True)
        if resume or output is None:
            job = _open_state(state_path, kind, batch_size, resume, identity)
            out = (CheckOutput(output, bool(job.done), job.output_end)
                   if output is not None else None)
        else:  # a new run: the output first, so that a bad path leaves no state file behind
            out = CheckOutput(output, False, None)
            try:
                job = _open_state(state_path, kind, batch_size, resume, identity)
            except click.ClickException:
                out.close()
                raise
        outcome.earlier = job.accounts
        bar.update(task, completed=outcome.earlier)
        bar.start()  # only now: a refused first call prints its one line alone

    def on_batch(index: int, results: list[AccountResult]) -> int | None:
        """A batch is finished: its rows written (then the job records it, with how far)."""
        out_end = out.write(results) if out is not None else None
        bar.advance(task, len(results))
        return out_end

    async def go(source: IO[bytes]) -> None:
        async with client:
            await check_settings(client, conn)
            open_files()
            accounts = iter_accounts(source, on_bad=refused if skip_invalid else None,
                                     name=file if file != "-" else None)
            # import takes the accounts (their profiles too), check and delete their UserIDs
            items = accounts if kind == "import" else (a.UserID for a in accounts)
            await jobs.arun(client, kind, items, state=job, missing_ok=missing_ok,
                            on_batch=on_batch, collect=False)

    started = time.monotonic()
    bad_input: Exception | None = None
    try:
        with (open(file, "rb") if file != "-" else contextlib.nullcontext(
                sys.stdin.buffer)) as source:
            try:
                _run(go(source))
            except (TimClientError, KeyboardInterrupt) as exc:  # the run cannot go on
                outcome.stopped = exc
            except InputError as exc:  # stdin: a bad line, found on the way
                outcome.stopped = bad_input = exc
            except jobs.InputChanged as exc:  # --resume: a finished batch is not what it was
                outcome.stopped = bad_input = jobs.InputChanged(f"{exc}: {START_OVER}")
    except OSError as exc:
        raise InputProblem(f"cannot read {file}: {exc.strerror}") from None
    finally:
        if bar.live.is_started:
            bar.stop()
        if out is not None:
            out.close()
    outcome.seconds = time.monotonic() - started
    outcome.done = job.accounts - outcome.earlier
    if outcome.stopped is None:
        outcome.total = job.accounts
    job.close(outcome.stopped is None)
    _summary(kind, outcome, job, client, file, failed_path, refused.kept)
    if bad_input is not None:
        raise InputProblem(f"{file}, {bad_input}" if file != "-" else f"stdin, {bad_input}")
    if outcome.stopped is not None:
        sys.exit(EXIT_STOPPED)
    if job.failed or refused.count:
        sys.exit(EXIT_FAILED)


def _open_state(path: Path | None, kind: Kind, batch_size: int, resume: bool,
                identity: dict[str, Any]) -> JobState:
    from ..client import jobs

    try:
        return jobs.JobState.open(path, kind, batch_size, resume=resume, **identity)
    except jobs.StateMismatch as exc:
        raise click.UsageError(f"{exc}: {START_OVER}") from None
    except OSError as exc:
        raise InputProblem(f"cannot write the state file {path}: {exc.strerror}") from None


def _run(coro: Any) -> None:
    try:
        import uvloop  # faster event loop when installed (uvicorn[standard] brings it)
    except ImportError:  # pragma: no cover
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _summary(kind: str, outcome: Outcome, job: JobState, client: AsyncClient, file: str,
             failed_path: str | None, refused: list[tuple[int, str, str]]) -> None:
    def say(text: str) -> None:
        click.echo(text, err=True)

    failed: list[list[Any]] = [[r.user_id, r.code, r.info] for r in job.failures()]
    # --skip-invalid: the lines that are not accounts, never sent (no ErrorCode)
    failed += [[text, "", f"line {number}: {reason} (not sent)"]
               for number, reason, text in refused]
    finished = job.accounts
    rate = outcome.done / outcome.seconds if outcome.seconds > 0 else 0.0
    past = f" ({outcome.earlier:,} by an earlier run)" if outcome.earlier else ""
    of = f" of {outcome.total:,}" if outcome.total is not None else ""
    say(f"{kind}: {finished:,}{of} accounts done{past}; this run "
        f"{outcome.done:,} in {outcome.seconds:.1f} s ({rate:,.0f} accounts/s)")
    say(f"  succeeded: {finished - len(failed) + len(refused):,}   failed: {len(failed):,}"
        + (f" ({len(refused):,} lines that are not accounts, skipped)" if refused else ""))
    if kind == "check":
        say(f"  Imported: {job.status['Imported']:,}   "
            f"NotImported: {job.status['NotImported']:,}")
    if client.stats.retries:
        why = ", ".join(f"{reason} ×{n}" for reason, n in client.stats.retried.most_common())
        say(f"  retries: {client.stats.retries} ({why})")
    if failed:
        codes = ", ".join(f"{code or 'not an account'} ×{n}"
                          for code, n in Counter(f[1] for f in failed).most_common())
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
        if job.path is not None:
            say(f"  finished batches are in {job.path}: rerun with --resume to continue")


# --- the commands ----------------------------------------------------------------------------


def bulk_options(kind: str) -> Callable[[Callable[..., Any]], Any]:
    def decorate(f: Callable[..., Any]) -> Any:
        f = click.option("--progress/--no-progress", default=True, show_default=True,
                         help="Show a progress bar (on stderr).")(f)
        f = click.option("--batch-size", type=click.IntRange(1, 100), default=100,
                         show_default=True, help="Accounts per call.")(f)
        f = click.option("--failed", "failed_path", metavar="PATH",
                         help=f"Where to write failed accounts with their codes "
                              f"[default: FILE.{kind}-failed.csv].")(f)
        f = click.option("--state", metavar="PATH",
                         help=f"The state file [default: FILE.{kind}-state].")(f)
        f = click.option("--resume", is_flag=True,
                         help="Continue an interrupted run: skip the batches it finished.")(f)
        f = click.option("--skip-invalid", is_flag=True,
                         help="Send the accounts of FILE even when some of its lines are not "
                              "accounts; those lines go to the failed-accounts file.")(f)
        f = click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))(f)
        return connection_options(f)
    return decorate


@click.group(cls=LazyGroup, lazy={"load": "timserver.cli.load:load"})  # load: into the database
def accounts() -> None:
    """Import, check, delete accounts in bulk, and kick one (timserver or Tencent).

    The connection comes from flags or TIMSERVER_ENDPOINT, TIMSERVER_SDKAPPID, TIMSERVER_KEY,
    TIMSERVER_ADMIN. FILE is CSV (header UserID,Nick,FaceUrl), NDJSON, or one UserID per line;
    - reads stdin. Exit status: 0 all succeeded, 1 some accounts failed, 2 a usage error, bad
    input or connection settings the server refuses (nothing sent), 3 the run stopped early.
    """


@accounts.command("import")
@bulk_options("import")
def import_(file: str, resume: bool, skip_invalid: bool, state: str | None,
            failed_path: str | None, batch_size: int, progress: bool, **conn: Any) -> None:
    """Import the accounts of FILE (multiaccount_import, 100 a call)."""
    run_bulk("import", file, _split(conn), resume=resume, state=state, failed_path=failed_path,
             batch_size=batch_size, progress=progress, skip_invalid=skip_invalid)


@accounts.command()
@bulk_options("delete")
@click.option("--missing-ok", is_flag=True,
              help="An account that does not exist (70107) is not a failure.")
def delete(file: str, resume: bool, skip_invalid: bool, state: str | None,
           failed_path: str | None, batch_size: int, progress: bool, missing_ok: bool,
           **conn: Any) -> None:
    """Delete the accounts of FILE (account_delete, 100 a call)."""
    run_bulk("delete", file, _split(conn), resume=resume, state=state, failed_path=failed_path,
             batch_size=batch_size, progress=progress, missing_ok=missing_ok,
             skip_invalid=skip_invalid)


@accounts.command()
@bulk_options("check")
@click.option("--output", "-o", metavar="PATH",
              help="Write UserID,AccountStatus for every account to PATH (- for stdout); with "
                   "--resume, the rows of the earlier run are kept in PATH.")
def check(file: str, resume: bool, skip_invalid: bool, state: str | None,
          failed_path: str | None, batch_size: int, progress: bool, output: str | None,
          **conn: Any) -> None:
    """Check which accounts of FILE are imported (account_check, 100 a call)."""
    run_bulk("check", file, _split(conn), resume=resume, state=state, failed_path=failed_path,
             batch_size=batch_size, progress=progress, output=output, skip_invalid=skip_invalid)


@accounts.command()
@click.argument("userid")
@connection_options
def kick(userid: str, **conn: Any) -> None:
    """Invalidate USERID's login state: its UserSigs signed until now are refused."""
    from ..client import ApiError, TimClientError

    settings = _split(conn)
    client = make_client(settings)

    async def go() -> None:
        async with client:
            await client.kick(UserID=userid)
    try:
        _run(go())
    except ApiError as exc:
        if exc.code in SETTINGS_FIXES:
            raise InputProblem(settings_fix(exc, settings)) from None
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except TimClientError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"Kicked {userid}: UserSigs signed until now are refused.")


__all__ = ["accounts"]
