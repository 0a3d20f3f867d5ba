"""``timserver serve``: run the server (creating a first app on an empty database)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..config import data_dir, redact_url
from ..server import console as web_console
from ..server import httpguard, tls
from ..server.asgi import SETTINGS_ENV, Settings
from ..service import apps as app_rules
from ..storage import App, Storage
from ._common import curl_example, db_option, with_storage
from .declared import app_options, apply_declared, print_declared
from .portable import export_on_exit, import_at_start, portable_options
from .state import apply_emulator, check_emulator, emulator_options


async def _apps(storage: Storage) -> list[App]:
    return await storage.list_apps()


async def _create_first(storage: Storage, planned: App) -> App:
    return await app_rules.create_app(storage, sdkappid=planned.sdkappid, key=planned.key,
                                      admins=planned.admins, edition=planned.edition)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="0: any free port (the one taken is printed).")
@db_option
@click.option("--console/--no-console", "console", default=True, show_default=True,
              help="Serve the web console at /console (see docs/console.md).")
@click.option("--console-bind", metavar="ADDRESS", default=None,
              callback=lambda ctx, param, value: _bind(value),
              help="Local address on which the console answers (0.0.0.0 or :: for any); "
                   "default: loopback only.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; they share the rate limits of each app.")
@click.option("--body-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 300),
              help="Seconds for a request body to arrive, else 60008 (slow clients).")
@click.option("--deadline", default=3.0, show_default=True, type=float,
              help="Seconds within which a call is served, else 70169.")
@click.option("--header-timeout", default=10.0, show_default=True,
              type=click.FloatRange(0.1, 3600),
              help="Seconds a client has to send a request's headers (slow clients are cut; "
                   "docs/security.md).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request (UserSigs are never logged).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="json: one JSON object per line (UserSigs and keys are never logged).")
@click.option("--redis", "redis_url", metavar="URL", envvar="TIMSERVER_REDIS",
              help="Share rate limits through Redis (redis://HOST:PORT/DB) across instances.")
@click.option("--tls", "tls_mode", type=click.Choice(["self-signed"]),
              help="Serve HTTPS with a local CA and certificate made once in the data folder.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="Serve HTTPS with this certificate (PEM, chain included).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="The private key of --tls-cert (PEM).")
@click.option("--emulator/--no-emulator", "emulator_on", default=True, show_default=True,
              envvar="TIMSERVER_EMULATOR",
              help="The emulator's powers: any admin UserSig can reset the app, move its clock "
                   "and inject faults. --no-emulator (TIMSERVER_EMULATOR=0) for production.")
@app_options  # --app, --dev-app (TIMSERVER_APPS): apps declared before listening
@portable_options  # --import FILE, --export-on-exit FILE (timserver.portable)
@emulator_options  # --faults, --seed, --seed-sdkappid, --clock-offset, --throttle-hints
def serve(host: str, port: int, db: str, workers: int, body_timeout: float, deadline: float,
          header_timeout: float, access_log: bool,
          log_level: str, log_format: str, redis_url: str | None, tls_mode: str | None,
          tls_cert: str | None, tls_key: str | None,
          console: bool = True, console_bind: str | None = None, emulator_on: bool = True,
          declared: list[Any] | None = None, dev_app: bool = False, **emulator: Any) -> None:
    """Serve the REST API (POST /v4/{servicename}/{command})."""
    if not emulator_on:
        given = [flag for flag, key in EMULATOR_ONLY.items() if emulator.get(key) is not None]
        if given:
            raise click.UsageError(f"{given[0]} is an emulator power; it cannot be used with "
                                   "--no-emulator")
        source = click.get_current_context().get_parameter_source("dev_app")
        if dev_app and source is not click.core.ParameterSource.COMMANDLINE:
            dev_app = False  # its key is public: in production only when asked for by name
    # The port is taken and every option and file checked before anything changes (no app
    # made, nothing seeded) or is printed: what is printed is what is served.
    _check_tls(tls_mode, tls_cert, tls_key)
    sock = _listen(host, port)
    import_at_start(db, emulator)  # serve --import (checked whole first): declared apps win
    declared_now = apply_declared(db, declared or [], dev_app)  # a declared app is the first
    apps = with_storage(db, _apps)
    first = None if apps else App(sdkappid=app_rules.new_sdkappid(), key=app_rules.new_key(),
                                  edition="developer", admins=(app_rules.DEFAULT_ADMIN,))
    plan = check_emulator(emulator, apps or [first]) if emulator_on else None  # docs/emulator.md
    ssl = _tls_files(tls_mode, tls_cert, tls_key)
    created = with_storage(db, lambda storage: _create_first(storage, first)) if first else None
    apps = apps or [created]

    port = sock.getsockname()[1]  # the one taken (--port 0: any free port)
    scheme = "https" if ssl else "http"
    base = _base_url(host, port, scheme)
    ca = Path(ssl[0]).parent / "ca.pem" if tls_mode else None
    click.echo(f"timserver listening on {base}  (database {redact_url(db)})")
    if ca is not None:
        click.echo(tls.trust_instructions(ca))
    if created is not None:
        click.echo("\nCreated a first app (developer edition):")
        click.echo(f"  SDKAppID: {created.sdkappid}")
        click.echo(f"  Key:      {created.key}")
        click.echo(f"  Admin:    {created.admins[0]}")
        click.echo("\nCall account_check with a valid admin UserSig:\n")
        click.echo("  " + curl_example(base, created.sdkappid, created.key, created.admins[0],
                                       cacert=ca))
        click.echo("")
    else:
        listed = ", ".join(f"{a.sdkappid} ({a.edition})" for a in apps[:5])
        click.echo(f"Apps: {listed}{' ...' if len(apps) > 5 else ''}")
        click.echo(f"`timserver app show {apps[0].sdkappid} --url {base}` prints its key and a "
                   "curl command.")
    print_declared(declared_now, base)
    click.echo(f"OpenAPI document: {base}/openapi.json")
    token = web_console.console_token() if console else None
    if token:
        link = web_console.console_url(host, port, console_bind, token, scheme=scheme)
        if link:  # the page starts on the app printed above (created, or the first one)
            link += f"&app={apps[0].sdkappid}"
        click.echo(f"Web console:      {link}" if link else
                   "Web console: answers on loopback only, where this server does not listen; "
                   "see --console-bind.")

    if plan is not None:
        click.echo("Emulator: on. Any admin UserSig can reset its app, move its clock and inject "
                   "faults; serve --no-emulator turns that off (production).")
        apply_emulator(db, plan)
    else:
        click.echo("Emulator: off (production mode): no fault rule, clock offset, reset or "
                   "snapshot reaches this server.")

    shared = None
    if workers > 1:  # the workers share one rate-limit log, so limits hold for the app
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
        _remove_stale_shared_folders(folder or tempfile.gettempdir())
        shared = tempfile.mkdtemp(prefix=f"timserver-limits-{os.getpid()}-", dir=folder)
        # the workers' metrics are summed from files in one folder (prometheus multiprocess mode)
        os.makedirs(os.path.join(shared, "metrics"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(shared, "metrics")
    settings = Settings(db=db, deadline=deadline, body_timeout=body_timeout,
                        access_log=access_log, log_level=log_level,
                        log_format=log_format, redis=redis_url,
                        shared_limiter=os.path.join(shared, "limits.db") if shared else None,
                        console=console, console_bind=console_bind, console_token=token,
                        emulator=emulator_on)
    settings.throttle_hints = emulator["throttle_hints"]
    settings.record_bodies = bool(emulator.get("record_bodies"))
    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    os.environ[httpguard.HEADER_TIMEOUT_ENV] = str(header_timeout)  # read by every worker
    try:
        with export_on_exit(db, emulator):  # serve --export-on-exit: after the last answer
            _run(sock, workers, log_level, log_format, ssl)
    finally:
        if shared:
            shutil.rmtree(shared, ignore_errors=True)


#: serve's options that only the emulator gives a meaning to
EMULATOR_ONLY = {"--faults": "faults_file", "--seed": "seed_path", "--clock-offset": "clock_offset",
                 "--record-bodies": "record_bodies"}


def _remove_stale_shared_folders(parent: str) -> None:
    """Folders of earlier servers that died by a signal (uvicorn re-raises SIGTERM, so a
    ``finally`` does not always run): removed when the process that made them is gone."""
    for name in os.listdir(parent):
        if not name.startswith("timserver-limits-"):
            continue
        pid = name.split("-")[2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything is printed; a failure is one line saying
    what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = socket.socket(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        if family == socket.AF_INET6:  # IPv6 only, as asyncio binds it: no IPv4-mapped peers
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(2048)  # now: a second server cannot bind the port too (SO_REUSEADDR)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {where}: {_why(exc, port)}") from None
    sock.set_inheritable(True)  # the workers of --workers N inherit it
    return sock


def _why(exc: OSError, port: int) -> str:
    if isinstance(exc, socket.gaierror):
        return "no such host name: give --host an address of this machine"
    if exc.errno == errno.EADDRINUSE:
        return ("the port is already in use (is another timserver running?): stop that "
                "process, or choose another --port")
    if exc.errno == errno.EADDRNOTAVAIL:
        return "that address is not one of this machine's: choose another --host"
    if exc.errno == errno.EACCES and port < 1024:
        return "ports below 1024 need privileges: choose --port 1024 or above"
    return f"{exc.strerror or exc}"


def _base_url(host: str, port: int, scheme: str) -> str:
    """The URL clients on this machine use (loopback for a wildcard address)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"{scheme}://{'[' + shown + ']' if ':' in shown else shown}:{port}"


def _log_config(log_format: str) -> dict[str, Any] | None:
    """--log-format json: uvicorn's own lines (start-up, shutdown, errors) as JSON objects too."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": "timserver.server.observability.JsonFormatter"}},
            "handlers": {"json": handler},
            "loggers": {name: {"handlers": ["json"], "propagate": False}
                        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}}


def _run(sock: socket.socket, workers: int, log_level: str, log_format: str,
         ssl: tuple[str, str] | None) -> None:
    """uvicorn on the socket already taken (what ``uvicorn.run`` does after binding its own)."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        "timserver.wiring:app_from_env", factory=True, host=host, port=port,
        workers=workers, access_log=False, log_level=log_level, server_header=False,
        log_config=_log_config(log_format) or LOGGING_CONFIG,
        lifespan="on", timeout_graceful_shutdown=10,
        http="timserver.server.httpguard:GuardedHttpToolsProtocol",
        ws="none",  # no WebSocket endpoint: an Upgrade is served as plain HTTP
        ssl_certfile=ssl[0] if ssl else None, ssl_keyfile=ssl[1] if ssl else None)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if workers == 1 and not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


def _check_tls(mode: str | None, cert: str | None, key: str | None) -> None:
    if mode and (cert or key):
        raise click.UsageError("use either --tls self-signed or --tls-cert/--tls-key")
    if bool(cert) != bool(key):
        raise click.UsageError("--tls-cert and --tls-key go together")


def _tls_files(mode: str | None, cert: str | None, key: str | None) -> tuple[str, str] | None:
    """(certificate, key) to serve HTTPS with, or None for plain HTTP."""
    _check_tls(mode, cert, key)
    if mode == "self-signed":
        files = tls.ensure_self_signed(data_dir() / "tls")
        return str(files.cert), str(files.key)
    return (cert, key) if cert and key else None


def _bind(value: str | None) -> str | None:
    try:
        return web_console.check_bind(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--console-bind") from None
