"""``timserver usersig``: generate a UserSig, or explain what one holds and why it fails."""

from __future__ import annotations

import datetime as dt

import click

from .. import usersig as sigs
from ..protocol.errors import CATALOGUE
from ..service.clock import Clock


@click.group()
def usersig() -> None:
    """Generate and explain UserSigs (TLSSigAPIv2)."""


@usersig.command()
@click.option("--sdkappid", type=int, required=True)
@click.option("--key", required=True, help="The app's secret key.")
@click.option("--identifier", required=True, help="The UserID the sig is for.")
@click.option("--expire", type=int, default=sigs.DEFAULT_EXPIRE, show_default=True,
              help="Validity in seconds (default 180 days).")
def gen(sdkappid: int, key: str, identifier: str, expire: int) -> None:
    """Print a UserSig, exactly as the official libraries make it."""
    click.echo(sigs.generate(sdkappid, key, identifier, expire, now=int(Clock().now())))


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
def explain(sig: str, sdkappid: int | None, key: str | None, identifier: str | None) -> None:
    """Show what a UserSig holds and say whether it is valid, and if not, why.

    Exits 0 when the sig is valid for what was checked, 1 when it is refused.
    """
    now = int(Clock().now())
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
