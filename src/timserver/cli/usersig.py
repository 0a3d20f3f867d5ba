"""``timserver usersig``: generate a UserSig, or explain what one holds and why it fails."""

from __future__ import annotations

import datetime as dt
import time

import click

from .. import usersig as sigs
from ..protocol.errors import CATALOGUE
from ..service import apps as app_rules
from ..storage import Storage
from ..storage import exists as storage_exists
from ._common import db_option, with_storage


@click.group()
def usersig() -> None:
    """Generate and explain UserSigs (TLSSigAPIv2)."""


def _key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The same rule as ``app create --key``: Tencent's secret keys are 64 hex characters."""
    try:
        app_rules.check_settings(key=value)
    except app_rules.AppConfigError as exc:
        raise click.ClickException(f"--key: {exc}") from None
    return value


def app_clock(db: str, sdkappid: int) -> float:
    """Offset from the wall clock of app ``sdkappid``'s time on the emulator of ``db`` (the
    server-wide offset plus the app's own, as the server judges its calls); 0 when the database
    does not exist (nothing is created for it)."""
    if not storage_exists(db):
        return 0.0

    async def offsets(storage: Storage) -> float:
        from ..emulator.state import bounded

        return bounded(await storage.clock_offset() + await storage.app_clock_offset(sdkappid))
    return with_storage(db, offsets)


@usersig.command()
@click.option("--sdkappid", type=int, required=True)
@click.option("--key", required=True, callback=_key, help="The app's secret key (64 hex).")
@click.option("--identifier", required=True, help="The UserID the sig is for.")
@click.option("--expire", type=int, default=sigs.DEFAULT_EXPIRE, show_default=True,
              help="Validity in seconds (default 180 days).")
@db_option
def gen(sdkappid: int, key: str, identifier: str, expire: int, db: str) -> None:
    """Print a UserSig, exactly as the official libraries make it, issued at the app's time on
    the emulator of --db (its clock may have been moved: timserver clock)."""
    now = int(time.time() + app_clock(db, sdkappid))
    click.echo(sigs.generate(sdkappid, key, identifier, expire, now=now))


def _when(ts: int, now: int) -> str:
    try:
        local = dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, OSError, ValueError):
        local = "beyond the calendar"
    delta = ts - now
    span = abs(delta)
    if span < 120:
        rel = f"{span} s"
    elif span < 7200:
        rel = f"{span // 60} min"
    elif span < 172800:
        rel = f"{span // 3600} h"
    else:
        rel = f"{span // 86400} days"
    return f"{local} ({'in ' + rel if delta > 0 else rel + ' ago' if delta < 0 else 'now'})"


@usersig.command()
@click.argument("sig")
@click.option("--sdkappid", type=int, help="Check it is for this SDKAppID.")
@click.option("--key", help="Check the signature with this secret key.")
@click.option("--identifier", help="Check it is for this identifier.")
@db_option
def explain(sig: str, sdkappid: int | None, key: str | None, identifier: str | None,
            db: str) -> None:
    """Show what a UserSig holds and say whether it is valid, and if not, why.

    Its expiry is judged at the app's time on the emulator of --db (timserver clock), as that
    server judges it. Exits 0 when the sig is valid for what was checked, 1 when it is refused.
    """
    try:
        sdkappid_of_sig = sigs.decode(sig).sdkappid
    except sigs.SigError:
        sdkappid_of_sig = None
    offset = app_clock(db, sdkappid_of_sig) if sdkappid_of_sig is not None else 0.0
    now = int(time.time() + offset)
    found = sigs.explain(sig, now=now, key=key, sdkappid=sdkappid, identifier=identifier)
    doc = found.document
    if doc is not None:
        click.echo(f"Identifier: {doc.identifier}")
        click.echo(f"SDKAppID:   {doc.sdkappid}")
        click.echo(f"Version:    {doc.ver if doc.ver is not None else '(absent)'}")
        click.echo(f"Issued:     {_when(doc.time, now)}")
        click.echo(f"Expires:    {_when(doc.expires_at, now)} (valid for {doc.expire} s)")
        if doc.userbuf is not None:
            click.echo(f"Userbuf:    {doc.userbuf} (TRTC PrivateMapKey; IM does not use it)")
        if offset:
            click.echo(f"Clock:      app {doc.sdkappid}'s emulator time, {offset:+g} s from the "
                       "wall clock (timserver clock show)")
    if found.error is not None:
        _refused(found.error)
        return
    checked = "signature, expiry" if key else "expiry only (no --key: signature not checked)"
    click.echo(f"Valid:      yes ({checked})")


def _refused(err: sigs.SigError) -> None:
    name = CATALOGUE[err.code].name if err.code in CATALOGUE else ""
    click.echo(f"Valid:      NO: {err.reason}")
    click.echo(f"A server answers ErrorCode {err.code} ({name}).")
    raise SystemExit(1)
