"""Apps declared at start: ``serve --app SDKAPPID:KEY[:ADMIN[,ADMIN...]][:EDITION]`` (repeatable),
``TIMSERVER_APPS`` (the same, separated by spaces) and ``--dev-app`` (the well-known development
app). They are created or brought to what they declare before the server listens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..service import apps as app_rules
from ..storage import App, Storage
from ._common import curl_example, with_storage

APPS_ENV = "TIMSERVER_APPS"
DEV_APP_ENV = "TIMSERVER_DEV_APP"


def _parse(ctx: click.Context, param: click.Parameter,
           values: tuple[str, ...]) -> list[app_rules.Declared]:
    """Every declaration checked before anything is changed (a bad one: one line, nothing made)."""
    try:
        return app_rules.check_declared([app_rules.parse_declared(v) for v in values])
    except app_rules.AppConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'--app' / {APPS_ENV}") from None


def app_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``serve``'s options that declare apps (they arrive as ``declared`` and ``dev_app``)."""
    command = click.option(
        "--dev-app/--no-dev-app", "dev_app", default=False, envvar=DEV_APP_ENV,
        show_default=True,
        help=f"Declare the well-known development app ({app_rules.DEV_SDKAPPID}, its key is "
             f"public: docs/container.md); on in the container image. ${DEV_APP_ENV}=1 too.")(
        command)
    return click.option(
        "--app", "declared", multiple=True, envvar=APPS_ENV, callback=_parse,
        metavar="SDKAPPID:KEY[:ADMIN[,ADMIN...]][:EDITION]",
        help=f"Create this app, or make it so (a new key rotates it), before listening; "
             f"repeatable. ${APPS_ENV} holds the same, separated by spaces.")(command)


def apply_declared(db: str, declared: list[app_rules.Declared],
                   dev_app: bool) -> list[tuple[App, str]]:
    """Create or update the declared apps (the development app last, unless an explicit
    declaration names its SDKAppID); ``[(app, "created" | "updated" | "unchanged")]``."""
    wanted = list(declared)
    if dev_app and all(d.sdkappid != app_rules.DEV_SDKAPPID for d in wanted):
        wanted.append(app_rules.DEV_APP)
    if not wanted:
        return []

    async def work(storage: Storage) -> list[tuple[App, str]]:
        try:
            return [await app_rules.declare_app(storage, one) for one in wanted]
        except app_rules.AppConfigError as exc:
            raise click.ClickException(str(exc)) from None
    return with_storage(db, work)


def print_declared(done: list[tuple[App, str]], base_url: str) -> None:
    """One line per declared app (never its key: the declaration holds it); the well-known
    development app, whose key is public, gets the first-app banner with a curl command."""
    for app, action in done:
        if app.sdkappid == app_rules.DEV_SDKAPPID and app.key == app_rules.DEV_KEY:
            continue
        click.echo(f"Declared app {app.sdkappid} ({app.edition}, admins "
                   f"{','.join(app.admins)}): {action}.")
    for app, action in done:
        if app.sdkappid == app_rules.DEV_SDKAPPID and app.key == app_rules.DEV_KEY:
            click.echo(f"\nWell-known development app ({app.edition} edition, {action}; its key "
                       "is public, docs/container.md):")
            click.echo(f"  SDKAppID: {app.sdkappid}")
            click.echo(f"  Key:      {app.key}")
            click.echo(f"  Admin:    {app.admins[0]}")
            click.echo("\nCall account_check with a valid admin UserSig:\n")
            click.echo("  " + curl_example(base_url, app.sdkappid, app.key, app.admins[0]))
            click.echo("")
