"""``timserver app``: create, list, show apps; rotate keys; set rate limits, callbacks and
whether a pro app may delete accounts."""

from __future__ import annotations

import json

import click

from ..protocol.commands import BY_NAME
from ..service import apps as app_rules
from ..service.events import CALLBACK_COMMANDS
from ..storage import App, AppExists, Storage
from ._common import curl_example, db_option, with_storage

GUESSED_URL = "http://127.0.0.1:8080"  # serve's defaults: --host 127.0.0.1 --port 8080


def _as_dict(app: App, accounts: int | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "sdkappid": app.sdkappid, "key": app.key, "edition": app.edition,
        "admins": list(app.admins),
        "limits": {name: app_rules.rate_for(app, name) for name in BY_NAME},
        "allow_delete": app.allow_delete,
        "callback": None if app.callback is None else {
            "url": app.callback.url, "token": bool(app.callback.token),
            "commands": list(app.callback.commands)},
    }
    if accounts is not None:
        data["accounts"] = accounts
    return data


def _print_app(app: App, accounts: int | None = None) -> None:
    click.echo(f"SDKAppID: {app.sdkappid}")
    click.echo(f"Key:      {app.key}")
    click.echo(f"Edition:  {app.edition}")
    click.echo(f"Admins:   {', '.join(app.admins)}")
    if accounts is not None:
        click.echo(f"Accounts: {accounts} ({len(app.admins)} of them admins)")
    limits = ", ".join(f"{name} {app_rules.rate_for(app, name) or 'unlimited'}"
                       for name in BY_NAME)
    click.echo(f"Limits:   {limits} (calls/s)")
    if app.edition == "pro":
        click.echo(f"Delete:   {'allowed (app allow-delete)' if app.allow_delete else 'off'}")
    if app.callback is not None:
        token = "with a token" if app.callback.token else "no token"
        click.echo(f"Callback: {app.callback.url} ({token}; "
                   f"{', '.join(app.callback.commands)})")


async def all_accounts(storage: Storage, app: App) -> int:
    """The app's accounts, its admins included (admins are accounts: account_check answers
    Imported for them), as the web console counts them; the trial cap alone leaves admins out
    (docs/protocol.md)."""
    return await storage.count_accounts(app.sdkappid) + len(app.admins)


def _config_error(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def app() -> None:
    """Manage apps: SDKAppID, secret key, admins, edition, rate limits."""


@app.command()
@click.option("--sdkappid", type=int, help="SDKAppID (default: a random 14xxxxxxxx).")
@click.option("--key", help="Secret key (default: 64 random hex characters).")
@click.option("--admin", "admins", multiple=True, metavar="NAME",
              help="Admin identifier; repeat for several (default: administrator).")
@click.option("--edition", type=click.Choice(app_rules.EDITIONS), default="developer",
              show_default=True, help="developer: no cap; trial: 100 accounts; pro: no delete.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def create(sdkappid: int | None, key: str | None, admins: tuple[str, ...], edition: str,
           as_json: bool, db: str) -> None:
    """Create an app and print its SDKAppID and key."""
    async def work(storage: Storage) -> App:
        try:
            return await app_rules.create_app(
                storage, sdkappid=sdkappid, key=key,
                admins=admins or (app_rules.DEFAULT_ADMIN,), edition=edition)
        except (app_rules.AppConfigError, AppExists) as exc:
            raise _config_error(exc) from None
    created = with_storage(db, work)
    if as_json:
        click.echo(json.dumps(_as_dict(created)))
    else:
        _print_app(created)


@app.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@db_option
def list_(as_json: bool, db: str) -> None:
    """List the apps of the database."""
    async def work(storage: Storage) -> list[tuple[App, int]]:
        return [(a, await all_accounts(storage, a)) for a in await storage.list_apps()]
    rows = with_storage(db, work)
    for found, count in rows:
        if as_json:
            click.echo(json.dumps(_as_dict(found, count)))
        else:
            click.echo(f"{found.sdkappid}  {found.edition:<9}  accounts={count}  "
                       f"admins={','.join(found.admins)}")
    if not rows and not as_json:
        click.echo("No apps yet: `timserver app create` makes one (so does the first `serve`).")


def _get(db: str, sdkappid: int) -> tuple[App, int]:
    async def work(storage: Storage) -> tuple[App, int]:
        found = await storage.get_app(sdkappid)
        if found is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        return found, await all_accounts(storage, found)
    return with_storage(db, work)


@app.command()
@click.argument("sdkappid", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL",
              help="The server's address, for the example curl command (serve prints it); "
                   f"without it, {GUESSED_URL} is assumed.")
@db_option
def show(sdkappid: int, as_json: bool, url: str | None, db: str) -> None:
    """Show an app, with a ready-to-paste curl command."""
    found, count = _get(db, sdkappid)
    if as_json:
        click.echo(json.dumps(_as_dict(found, count)))
        return
    _print_app(found, count)
    if url is None:
        click.echo(f"\nTry it (guessing the server is at {GUESSED_URL}, the default of "
                   "`timserver serve`; give --url if it is not):\n  "
                   + curl_example(GUESSED_URL, found.sdkappid, found.key, found.admins[0]))
    else:
        click.echo("\nTry it:\n  " + curl_example(url.rstrip("/"), found.sdkappid, found.key,
                                                   found.admins[0]))


def _update(db: str, sdkappid: int, **change: object) -> App:
    async def work(storage: Storage) -> App:
        updated = await storage.update_app(sdkappid, **change)  # type: ignore[arg-type]
        if updated is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        return updated
    return with_storage(db, work)


@app.command("rotate-key")
@click.argument("sdkappid", type=int)
@click.option("--key", help="The new key (default: 64 random hex characters).")
@db_option
def rotate_key(sdkappid: int, key: str | None, db: str) -> None:
    """Give an app a new secret key; UserSigs signed with the old one stop working, and the
    app's kicks are cleared."""
    try:
        app_rules.check_settings(key=key)
    except app_rules.AppConfigError as exc:
        raise _config_error(exc) from None

    async def work(storage: Storage) -> App:
        updated = await app_rules.rotate_key(storage, sdkappid, key)
        if updated is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        return updated
    updated = with_storage(db, work)
    click.echo(f"SDKAppID: {updated.sdkappid}")
    click.echo(f"Key:      {updated.key}")


@app.command("unkick")
@click.argument("sdkappid", type=int)
@click.argument("user_id", metavar="USERID")
@db_option
def unkick(sdkappid: int, user_id: str, db: str) -> None:
    """Forget USERID's kick: UserSigs it revoked work again (a way back for an admin locked out
    by a kick dated ahead by a moved clock)."""
    async def work(storage: Storage) -> int:
        if await storage.get_app(sdkappid) is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        return await storage.unkick(sdkappid, user_id)
    removed = with_storage(db, work)
    click.echo(f"{sdkappid} {user_id}: " + ("kick forgotten" if removed else "was not kicked"))


@app.command("set-limit", context_settings={"ignore_unknown_options": True})  # RATE -1: refused below
@click.argument("sdkappid", type=int)
@click.argument("command", type=click.Choice(list(BY_NAME)))
@click.argument("rate", type=int)
@db_option
def set_limit(sdkappid: int, command: str, rate: int, db: str) -> None:
    """Set COMMAND's rate limit for an app, in calls per second (0 = unlimited)."""
    try:
        app_rules.check_limit(command, rate)
    except app_rules.AppConfigError as exc:
        raise _config_error(exc) from None
    updated = _update(db, sdkappid, limit=(command, rate))
    shown = app_rules.rate_for(updated, command) or "unlimited"
    click.echo(f"{updated.sdkappid} {command}: {shown} calls/s")


@app.command("set-edition")
@click.argument("sdkappid", type=int)
@click.argument("edition", type=click.Choice(app_rules.EDITIONS))
@db_option
def set_edition(sdkappid: int, edition: str, db: str) -> None:
    """Change an app's edition (developer, trial, pro)."""
    updated = _update(db, sdkappid, edition=edition)
    click.echo(f"{updated.sdkappid}: {updated.edition}")


@app.command("set-admins")
@click.argument("sdkappid", type=int)
@click.argument("admins", nargs=-1, required=True)
@db_option
def set_admins(sdkappid: int, admins: tuple[str, ...], db: str) -> None:
    """Replace an app's admins (1 to 10 UserIDs); admins are accounts too."""
    admins = tuple(dict.fromkeys(admins))
    try:
        app_rules.check_settings(admins=admins)
    except app_rules.AppConfigError as exc:
        raise _config_error(exc) from None
    updated = _update(db, sdkappid, admins=admins)
    click.echo(f"{updated.sdkappid}: admins {', '.join(updated.admins)}")


@app.command("set-callback")
@click.argument("sdkappid", type=int)
@click.argument("url")
@click.option("--token", help="The callback token: each callback then carries Sign and "
                              "RequestTime (prefer TIMSERVER_CALLBACK_TOKEN: flags show in ps).",
              envvar="TIMSERVER_CALLBACK_TOKEN")
@click.option("--command", "commands", multiple=True,
              type=click.Choice(list(CALLBACK_COMMANDS)),
              help="A callback command to switch on (repeatable; default: all of them).")
@db_option
def set_callback(sdkappid: int, url: str, token: str | None, commands: tuple[str, ...],
                 db: str) -> None:
    """Send the app's third-party callbacks to URL (docs/protocol.md §11.3)."""
    try:
        callback = app_rules.make_callback(url, token, commands)
    except app_rules.AppConfigError as exc:
        raise _config_error(exc) from None
    updated = _update(db, sdkappid, callback=callback)
    assert updated.callback is not None
    click.echo(f"{updated.sdkappid}: callbacks to {updated.callback.url} "
               f"({', '.join(updated.callback.commands)})")


@app.command("clear-callback")
@click.argument("sdkappid", type=int)
@db_option
def clear_callback(sdkappid: int, db: str) -> None:
    """Send the app no more callbacks."""
    updated = _update(db, sdkappid, clear_callback=True)
    click.echo(f"{updated.sdkappid}: no callbacks")


@app.command("allow-delete")
@click.argument("sdkappid", type=int)
@click.argument("state", type=click.Choice(["on", "off"]))
@db_option
def allow_delete(sdkappid: int, state: str, db: str) -> None:
    """Switch account_delete on or off for a pro app (a UserID deleted from a pro app cannot be
    imported again for 90 days); developer and trial apps always delete."""
    updated = _update(db, sdkappid, allow_delete=state == "on")
    note = "" if updated.edition == "pro" else f" (a {updated.edition} app deletes anyway)"
    click.echo(f"{updated.sdkappid}: account_delete {state}{note}")
