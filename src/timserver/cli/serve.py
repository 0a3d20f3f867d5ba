"""``timserver serve``: run the server (creating a first app on an empty database)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import click
import uvicorn

from ..server.asgi import SETTINGS_ENV, Settings
from ..service import apps as app_rules
from ..storage import App, Storage
from ._common import curl_example, db_option, with_storage


async def _first_app(storage: Storage) -> tuple[App | None, list[App]]:
    """The app created now if the database had none, and all apps."""
    existing = await storage.list_apps()
    if existing:
        return None, existing
    created = await app_rules.create_app(storage)
    return created, [created]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@db_option
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; they share the rate limits of each app.")
@click.option("--deadline", default=3.0, show_default=True, type=float,
              help="Seconds within which a call is served, else 70169.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request (UserSigs are never logged).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str, port: int, db: str, workers: int, deadline: float, access_log: bool,
          log_level: str) -> None:
    """Serve the REST API (POST /v4/{servicename}/{command})."""
    created, apps = with_storage(db, _first_app)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    base = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    click.echo(f"timserver listening on {base}  (database {db})")
    if created is not None:
        click.echo("\nCreated a first app (developer edition):")
        click.echo(f"  SDKAppID: {created.sdkappid}")
        click.echo(f"  Key:      {created.key}")
        click.echo(f"  Admin:    {created.admins[0]}")
        click.echo("\nCall account_check with a valid admin UserSig:\n")
        click.echo("  " + curl_example(base, created.sdkappid, created.key, created.admins[0]))
        click.echo("")
    else:
        listed = ", ".join(f"{a.sdkappid} ({a.edition})" for a in apps[:5])
        click.echo(f"Apps: {listed}{' ...' if len(apps) > 5 else ''}")
        click.echo(f"`timserver app show {apps[0].sdkappid}` prints its key and a curl command.")
    click.echo(f"OpenAPI document: {base}/openapi.json")

    shared = None
    if workers > 1:  # the workers share one rate-limit log, so limits hold for the app
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
        shared = tempfile.mkdtemp(prefix="timserver-limits-", dir=folder)
    settings = Settings(db=db, deadline=deadline, access_log=access_log, log_level=log_level,
                        shared_limiter=os.path.join(shared, "limits.db") if shared else None)
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    try:
        _run(host, port, workers, log_level)
    finally:
        if shared:
            shutil.rmtree(shared, ignore_errors=True)


def _run(host: str, port: int, workers: int, log_level: str) -> None:
    uvicorn.run("timserver.server.asgi:app_from_env", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level=log_level, server_header=False,
                lifespan="on")
