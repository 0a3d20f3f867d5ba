"""``timserver callbacks listen``: a receiver of third-party callbacks that prints each one as
it arrives (docs/protocol.md §11.3), to run beside one's own code, in the spirit of
``stripe listen``.

For each callback: the command, the app, the query's ``OptPlatform`` and ``ClientIP``, whether
``Sign`` matches the token (``--token``) and ``RequestTime`` is fresh, and the body. It answers as
Tencent expects (HTTP 200, ``{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}``), or, to test
how a server copes, with another ErrorCode (``--error-code``), HTTP status (``--status``) or late
(``--delay``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl

import click

MAX_BODY_BYTES = 1024 * 1024


def check_sign(query: dict[str, str], token: str | None, now: float,
               max_age: float) -> tuple[str, str]:
    """(what the Sign says, what the RequestTime says), as printed."""
    from ..server.callbacks import sign

    given, raw_time = query.get("Sign"), query.get("RequestTime", "")
    if token is None:
        return ("not checked (no --token)" if given else "none"), (raw_time or "none")
    if not given or not raw_time.isdigit():
        return "MISSING (a token is set: Sign and RequestTime are expected)", raw_time or "none"
    valid = hmac.compare_digest(given, sign(token, int(raw_time)))
    age = now - int(raw_time)
    fresh = f"fresh ({age:.0f} s old)" if abs(age) <= max_age else f"STALE ({age:.0f} s old)"
    return ("valid" if valid else "INVALID (not sha256(token + RequestTime))"), fresh


def receiver(token: str | None, max_age: float, error_code: int, status: int, delay: float,
             as_json: bool) -> Any:
    """The ASGI app: prints each callback, answers as asked."""
    answer = json.dumps({"ActionStatus": "OK" if error_code == 0 else "FAIL",
                         "ErrorInfo": "" if error_code == 0 else "refused by timserver callbacks "
                                                                 "listen --error-code",
                         "ErrorCode": error_code}).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        body = b"".join(chunks).decode("utf-8", "replace")
        signed, timed = check_sign(query, token, time.time(), max_age)
        if as_json:
            click.echo(json.dumps({"Method": scope["method"], "Path": scope["path"],
                                   "Query": query, "Body": body, "Sign": signed,
                                   "RequestTime": timed}, ensure_ascii=False))
        else:
            click.echo(f"{time.strftime('%H:%M:%S')}  {query.get('CallbackCommand', '?')}  "
                       f"app {query.get('SdkAppid', '?')}  OptPlatform={query.get('OptPlatform', '')}"
                       f"  ClientIP={query.get('ClientIP', '')}  Sign: {signed}  "
                       f"RequestTime: {timed}")
            click.echo(f"  {body}")
        if delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})
    return app


@click.group()
def callbacks() -> None:
    """Third-party callbacks (docs/protocol.md §11.3)."""


@callbacks.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8090, show_default=True)
@click.option("--token", envvar="TIMSERVER_CALLBACK_TOKEN", show_envvar=True,
              help="The app's callback token: each Sign is checked against it.")
@click.option("--max-age", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds a RequestTime may be off and still be fresh.")
@click.option("--error-code", type=int, default=0, show_default=True,
              help="Answer with this ErrorCode (ActionStatus FAIL unless 0).")
@click.option("--status", type=click.IntRange(100, 599), default=200, show_default=True,
              help="Answer with this HTTP status (anything but 200 is a failed delivery).")
@click.option("--delay", type=click.FloatRange(0, 600), default=0.0,
              help="Seconds to wait before answering (over 2 s: the sender gives up).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per callback.")
def listen(host: str, port: int, token: str | None, max_age: float, error_code: int,
           status: int, delay: float, as_json: bool) -> None:
    """Receive callbacks on http://HOST:PORT/ and print each as it arrives; point an app at it
    with `timserver app set-callback N http://HOST:PORT/`."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}; choose "
                                   "another --port") from None
    click.echo(f"Listening for callbacks on http://{host}:{port}/ "
               f"(Sign {'checked' if token else 'not checked: no --token'}); Ctrl-C stops.",
               err=True)
    config = uvicorn.Config(receiver(token, max_age, error_code, status, delay, as_json),
                            log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
