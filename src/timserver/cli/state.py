"""``timserver reset | seed | snapshot | clock``: the emulator's state (docs/emulator.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import click

from ..emulator import state
from ..emulator.faults import FaultSpec
from ..emulator.seed import SeedError, SeedResult, read_seed, seed_app
from ..storage import AccountWrite, App, SnapshotError, Snapshots, Storage, snapshots_for
from ._common import db_option, with_storage


async def _require_app(storage: Storage, sdkappid: int) -> None:
    if await storage.get_app(sdkappid) is None:
        raise click.ClickException(f"no app with SDKAppID {sdkappid}")


# --- reset ------------------------------------------------------------------------------------------


@click.command()
@click.option("--sdkappid", type=int, required=True, help="The app to empty.")
@click.option("--faults", "with_faults", is_flag=True, help="Delete the app's fault rules too.")
@click.option("--clock", "with_clock", is_flag=True, help="Set the clock offset back to 0 too.")
@click.option("--kicks", "with_kicks", is_flag=True,
              help="Forget the admins' kicks too (they survive a reset otherwise).")
@db_option
def reset(sdkappid: int, with_faults: bool, with_clock: bool, with_kicks: bool, db: str) -> None:
    """Delete an app's accounts (admins stay, with their kicks) and their kicks.

    A running server sees it on its next call (its rate-limit windows, kept in memory, empty
    within a second; the control endpoint POST /_timserver/reset empties them at once).
    """
    async def work(storage: Storage) -> dict[str, object]:
        await _require_app(storage, sdkappid)
        return await state.reset_app(storage, sdkappid, faults=with_faults, clock=with_clock,
                                     kicks=with_kicks)
    done = with_storage(db, work)
    line = f"App {sdkappid}: deleted {done['DeletedAccounts']} accounts"
    if "DeletedRules" in done:
        line += f" and {done['DeletedRules']} fault rules"
    if "ClockOffset" in done:
        line += "; clock offset 0"
    if "ForgottenKicks" in done:
        line += f"; {done['ForgottenKicks']} admins' kicks forgotten"
    click.echo(line + ".")


# --- seed -------------------------------------------------------------------------------------------


def seed_file(db: str, sdkappid: int, path: str) -> SeedResult:
    """Import a seed file into an app (``timserver seed`` and ``serve --seed``)."""
    try:
        accounts = read_seed(path)
    except SeedError as exc:
        raise click.ClickException(f"cannot seed: {exc}") from None

    async def work(storage: Storage) -> SeedResult:
        await _require_app(storage, sdkappid)
        return await seed_app(storage, sdkappid, accounts)
    return with_storage(db, work)


def seed_summary(sdkappid: int, result: SeedResult) -> str:
    line = f"Seeded app {sdkappid}: {result.imported} of {result.accounts} accounts imported"
    if result.refused:
        shown = ", ".join(result.refused[:5]) + (" ..." if len(result.refused) > 5 else "")
        line += f"; {len(result.refused)} refused by the trial edition's cap ({shown})"
    return line + "."


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--sdkappid", type=int, required=True, help="The app that gets the accounts.")
@db_option
def seed(path: str, sdkappid: int, db: str) -> None:
    """Import accounts from a file: CSV (UserID,Nick,FaceUrl), NDJSON, or one UserID a line."""
    click.echo(seed_summary(sdkappid, seed_file(db, sdkappid, path)))


# --- snapshot ---------------------------------------------------------------------------------------


@click.group()
def snapshot() -> None:
    """Named snapshots of the data (apps, accounts, kicks) of the database (SQLite or PostgreSQL)."""


def _snapshot_call(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except SnapshotError as exc:
        raise click.ClickException(str(exc)) from None


def _snapshots(db: str) -> Snapshots:
    """The snapshots of the database's kind: files next to SQLite, schemas inside PostgreSQL."""
    return _snapshot_call(snapshots_for, db)  # type: ignore[no-any-return]


def _checked(db: str, name: str) -> Snapshots:
    """The database's snapshots, once its URL and the name are known good (before the database
    is opened)."""
    found = _snapshots(db)
    _snapshot_call(found.check, name)
    return found


def _migrated(db: str) -> None:
    """Open the database once, so that it exists with every migration applied."""
    async def nothing(storage: Storage) -> None:
        return None
    with_storage(db, nothing)


@snapshot.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Replace a snapshot of that name.")
@db_option
def save(name: str, force: bool, db: str) -> None:
    """Save the database as snapshot NAME (safe while a server runs)."""
    found = _checked(db, name)
    _migrated(db)
    info = _snapshot_call(found.save, name, overwrite=force)
    click.echo(f"Saved snapshot {name!r}: {info.apps} apps, {info.accounts} accounts "
               f"({info.path}).")


@snapshot.command()
@click.argument("name")
@db_option
def restore(name: str, db: str) -> None:
    """Restore the apps, accounts and kicks of snapshot NAME (safe while a server runs;
    fault rules and the clock stay as they are)."""
    found = _checked(db, name)
    _migrated(db)
    info = _snapshot_call(found.restore, name)
    click.echo(f"Restored snapshot {name!r}: {info.apps} apps, {info.accounts} accounts.")


@snapshot.command("list")
@db_option
def list_(db: str) -> None:
    """List the snapshots of the database."""
    found = _snapshot_call(_snapshots(db).list_snapshots)
    for info in found:
        when = dt.datetime.fromtimestamp(info.created).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        counts = ("unreadable" if info.apps is None
                  else f"{info.apps} apps, {info.accounts} accounts")
        click.echo(f"{info.name}  {when}  {info.size} bytes  {counts}")
    if not found:
        click.echo("No snapshots (timserver snapshot save NAME makes one).")


@snapshot.command()
@click.argument("name")
@db_option
def delete(name: str, db: str) -> None:
    """Delete snapshot NAME."""
    _snapshot_call(_snapshots(db).delete, name)
    click.echo(f"Deleted snapshot {name!r}.")


# --- clock ------------------------------------------------------------------------------------------


@click.group()
def clock() -> None:
    """The emulator's clock: offsets from the wall clock, for UserSig expiry and kicks.

    Without --sdkappid, the server-wide offset (the operator's: every app, like serve
    --clock-offset); with --sdkappid N, app N's own offset, added to the server-wide one (what
    app N's admin sets with POST /_timserver/clock).
    """


def _show(offset: float) -> None:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    click.echo(f"Clock offset: {offset:+g} s (server time {now:%Y-%m-%d %H:%M:%S} UTC)")


def _show_app(sdkappid: int, own: float, server_wide: float) -> None:
    total = state.bounded(server_wide + own)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=total)
    click.echo(f"App {sdkappid} clock offset: {own:+g} s, plus {server_wide:+g} s server-wide "
               f"(app time {now:%Y-%m-%d %H:%M:%S} UTC)")


def _offset(value: str) -> float:
    try:
        return state.check_offset(float(value))
    except (ValueError, state.StateError) as exc:
        raise click.BadParameter(str(exc), param_hint="SECONDS") from None


_sdkappid_option = click.option(
    "--sdkappid", type=int, default=None,
    help="This app's own offset (added to the server-wide one); without it, the server-wide "
         "offset (every app).")


def _clock_work_db(db: str, sdkappid: int | None, change):  # type: ignore[no-untyped-def]
    """Run ``change(storage)`` (or nothing), then print the offset it is about."""
    async def work(storage: Storage) -> tuple[float, float]:
        if sdkappid is not None:
            await _require_app(storage, sdkappid)
        try:
            if change is not None:
                await change(storage)
        except state.StateError as exc:
            raise click.ClickException(str(exc)) from None
        own = await storage.app_clock_offset(sdkappid) if sdkappid is not None else 0.0
        return own, await storage.clock_offset()
    own, server_wide = with_storage(db, work)
    if sdkappid is None:
        _show(server_wide)
    else:
        _show_app(sdkappid, own, server_wide)


@clock.command()
@_sdkappid_option
@db_option
def show(sdkappid: int | None, db: str) -> None:
    """Show the server-wide clock offset and each app's own (or one app's)."""
    if sdkappid is not None:
        _clock_work_db(db, sdkappid, None)
        return

    async def work(storage: Storage) -> tuple[float, dict[int, float]]:
        return await storage.clock_offset(), await storage.app_clock_offsets()
    server_wide, apps = with_storage(db, work)
    _show(server_wide)
    for app_id, own in sorted(apps.items()):
        _show_app(app_id, own, server_wide)


@clock.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("seconds")
@_sdkappid_option
@db_option
def set_(seconds: str, sdkappid: int | None, db: str) -> None:
    """Set the offset to SECONDS (0: no offset; may be negative): the server-wide one, from the
    wall clock, or with --sdkappid app N's own, from the server-wide time."""
    offset = _offset(seconds)
    if sdkappid is None:
        _clock_work_db(db, None, lambda storage: state.set_clock(storage, offset))
    else:
        _clock_work_db(db, sdkappid,
                       lambda storage: state.set_app_clock(storage, sdkappid, offset))


@clock.command(context_settings={"ignore_unknown_options": True})
@click.argument("seconds")
@_sdkappid_option
@db_option
def advance(seconds: str, sdkappid: int | None, db: str) -> None:
    """Move the clock SECONDS forward (negative: back): every app's, or with --sdkappid app
    N's only."""
    step = _offset(seconds)
    if sdkappid is None:
        _clock_work_db(db, None, lambda storage: state.advance_clock(storage, step))
    else:
        _clock_work_db(db, sdkappid,
                       lambda storage: state.advance_app_clock(storage, sdkappid, step))


# --- serve --faults / --seed / --clock-offset / --throttle-hints -----------------------------------


def emulator_options(command):  # type: ignore[no-untyped-def]
    """The emulator's options of ``timserver serve`` (they arrive in its ``**emulator``)."""
    options = [
        click.option("--faults", "faults_file", type=click.Path(exists=True, dir_okay=False),
                     help="Fault rules to apply (a JSON file; docs/emulator.md); they replace the "
                          "rules of the apps they name."),
        click.option("--seed", "seed_path", type=click.Path(exists=True, dir_okay=False),
                     help="Import accounts at start: CSV (UserID,Nick,FaceUrl), NDJSON, or one "
                          "UserID a line."),
        click.option("--seed-sdkappid", type=int,
                     help="The app --seed fills (default: the database's only app)."),
        click.option("--clock-offset", type=float, metavar="SECONDS",
                     help="Set the server-wide clock SECONDS away from the wall clock (UserSig "
                          "expiry, kicks; every app, each app's own offset adds to it); "
                          "without it the database's server-wide offset stays."),
        click.option("--throttle-hints", is_flag=True,
                     help="On 60007 also send Retry-After and X-RateLimit-* headers."),
        click.option("--record-bodies", is_flag=True, default=None,
                     help="The request journal keeps each call's request and response bodies "
                          "(16 KiB each at most) and the UserIDs it names, for "
                          "GET /_timserver/calls (docs/emulator.md). Never the query: no UserSig."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class EmulatorPlan:
    """``serve``'s emulator options, read and checked, not applied yet."""

    seed: tuple[int, str, list[AccountWrite]] | None = None  # (SDKAppID, path, accounts)
    faults: tuple[str, list[tuple[int, FaultSpec]]] | None = None  # (path, rules)
    clock_offset: float | None = None


def check_emulator(options: dict[str, object], apps: Sequence[App]) -> EmulatorPlan:
    """Read and check every emulator option and file of ``serve`` against ``apps`` (the
    database's, or the first app about to be made) without changing anything: a bad one stops
    the start before any app is made or any account seeded."""
    plan = EmulatorPlan()
    seed_path, faults_file = options.get("seed_path"), options.get("faults_file")
    if seed_path:
        sdkappid = options.get("seed_sdkappid")
        if sdkappid is None:
            if len(apps) != 1:
                raise click.UsageError("the database holds several apps: say which one --seed "
                                       "fills with --seed-sdkappid")
            sdkappid = apps[0].sdkappid
        if sdkappid not in {a.sdkappid for a in apps}:
            raise click.BadParameter(f"no app with SDKAppID {sdkappid}",
                                     param_hint="--seed-sdkappid")
        assert isinstance(sdkappid, int)
        try:
            plan.seed = (sdkappid, str(seed_path), read_seed(str(seed_path)))
        except SeedError as exc:
            raise click.ClickException(f"cannot seed: {exc}") from None
    if faults_file:
        try:
            plan.faults = (str(faults_file), state.read_faults_file(str(faults_file), apps))
        except state.RuleError as exc:
            raise click.ClickException(f"cannot load the fault rules: {exc}") from None
    offset = options.get("clock_offset")
    if offset is not None:
        plan.clock_offset = _offset(str(offset))
    return plan


def apply_emulator(db: str, plan: EmulatorPlan) -> None:
    """Apply a checked plan to the database before the server starts, saying what it did."""
    if plan.seed is not None:
        sdkappid, _, accounts = plan.seed

        async def seed_it(storage: Storage) -> SeedResult:
            return await seed_app(storage, sdkappid, accounts)
        click.echo(seed_summary(sdkappid, with_storage(db, seed_it)))
    if plan.faults is not None:
        path, rules = plan.faults

        async def load(storage: Storage) -> int:
            for sdkappid in dict.fromkeys(sdkappid for sdkappid, _ in rules):
                await storage.delete_faults(sdkappid)  # the file's apps get exactly its rules
            for sdkappid, spec in rules:
                await state.add_rule(storage, sdkappid, spec)
            return len(rules)
        click.echo(f"Fault rules: {with_storage(db, load)} loaded from {path}.")
    if plan.clock_offset is not None:
        checked = plan.clock_offset
        with_storage(db, lambda storage: state.set_clock(storage, checked))

    async def offsets(storage: Storage) -> tuple[float, dict[int, float]]:
        return await storage.clock_offset(), await storage.app_clock_offsets()
    current, own = with_storage(db, offsets)
    if current:
        click.echo(f"Clock offset: {current:+g} s from the wall clock, server-wide (timserver "
                   "clock set 0 returns to real time).")
    if own:
        click.echo(f"Clock: {len(own)} app(s) with an offset of their own (timserver clock "
                   "show).")
