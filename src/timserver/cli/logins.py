"""``timserver login|logout|disconnect USERID``: simulated logins from the command line
(docs/protocol.md §11.2), written straight to the database like the emulator's other commands.

They change the same login state as ``POST /_timserver/login`` and friends, on the app's clock;
the app's callbacks (``State.StateChange``) are sent from this process before it exits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from ..protocol.errors import TimError
from ..protocol.messages import PLATFORMS
from ..service.clock import Clock
from ..service.presence import DISCONNECT_REASONS, PresenceService
from ..storage import App, Storage
from ._common import db_option, with_storage

sdkappid_option = click.option("--sdkappid", envvar="TIMSERVER_SDKAPPID", type=int,
                               required=True, show_envvar=True, help="The app's SDKAppID.")


def _run(db: str, sdkappid: int,
         work: Callable[[PresenceService, App], Awaitable[Any]]) -> Any:
    from ..server.callbacks import CallbackSender

    async def go(storage: Storage) -> Any:
        app = await storage.get_app(sdkappid)
        if app is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        clock = Clock()
        clock.set_offsets(await storage.clock_offset(), await storage.app_clock_offsets())
        sender = CallbackSender()
        try:
            return await work(PresenceService(storage, clock, sender), app)
        except TimError as exc:
            raise click.ClickException(f"{exc.code}: {exc.info}") from None
        finally:
            await sender.shutdown()  # the callbacks this caused are sent (or fail) first
    return with_storage(db, go)


@click.command()
@click.argument("userid")
@click.option("--platform", type=click.Choice(PLATFORMS), required=True,
              help="The device's platform; a second login on one platform replaces the first.")
@sdkappid_option
@db_option
def login(userid: str, platform: str, sdkappid: int, db: str) -> None:
    """Log a simulated device of USERID in: it is Online."""
    async def work(presence: PresenceService, app: App) -> str:
        device, replaced = await presence.login(app, userid, platform)
        kicked = f"; replaced device {replaced.inst_id}" if replaced else ""
        return f"{userid}: {platform} Online (InstId {device.inst_id}){kicked}"
    click.echo(_run(db, sdkappid, work))


@click.command()
@click.argument("userid")
@click.option("--platform", type=click.Choice(PLATFORMS),
              help="Only this device (default: every device).")
@sdkappid_option
@db_option
def logout(userid: str, platform: str | None, sdkappid: int, db: str) -> None:
    """Log USERID's device (every device without --platform) out: Offline."""
    async def work(presence: PresenceService, app: App) -> str:
        gone = await presence.logout(app, userid, platform)
        if not gone:
            return f"{userid}: no device was logged in"
        return f"{userid}: {', '.join(d.platform for d in gone)} Offline"
    click.echo(_run(db, sdkappid, work))


@click.command()
@click.argument("userid")
@click.option("--platform", type=click.Choice(PLATFORMS),
              help="Only this device (default: every device).")
@click.option("--reason", type=click.Choice(DISCONNECT_REASONS), default="LinkClose",
              show_default=True, help="The Reason of the State.StateChange callback.")
@sdkappid_option
@db_option
def disconnect(userid: str, platform: str | None, reason: str, sdkappid: int, db: str) -> None:
    """Drop USERID's connection: iPhone, Android and iPad devices become PushOnline, the
    others Offline."""
    async def work(presence: PresenceService, app: App) -> str:
        changed = await presence.disconnect(app, userid, platform, reason)
        if not changed:
            return f"{userid}: no device was Online"
        return f"{userid}: " + ", ".join(f"{d.platform} {s}" for d, s in changed)
    click.echo(_run(db, sdkappid, work))
