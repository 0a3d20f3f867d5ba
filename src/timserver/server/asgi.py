"""The ASGI application: routes, headers, the body stream, the access log.

Every answer under ``/v4/`` (and to any unknown path) is HTTP 200 with Tencent's envelope and
the CORS headers of Tencent's samples (docs/protocol.md §3); all decisions are in ``dispatch.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..emulator import control as emulator_control
from ..emulator.state import Emulator
from ..protocol.commands import COMMANDS
from ..service.clock import Clock
from ..service.ratelimit import RateLimiter, RedisLimiter, SharedFileLimiter
from ..storage import Storage, make_storage
from . import observability
from .bodies import read_asgi_body, read_body
from .console import ConsoleAccess, extension_routes
from .dispatch import BodyReader, CallInfo, Dispatcher
from .journal import Journal, declared_size
from .openapi import openapi_document

access_log = logging.getLogger("timserver.access")

#: ``TIMSERVER_BENCH_ENDPOINTS=1`` adds a hidden route answering a fixed small JSON body on the
#: same stack (not in the OpenAPI document): the ceiling the benchmarks compare with (bench/).
BENCH_ENV = "TIMSERVER_BENCH_ENDPOINTS"
BENCH_PATH = "/_bench/ping"
BENCH_BODY = b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'

JSON_TYPE = "application/json; charset=utf-8"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "X-Requested-With",
    "Access-Control-Allow-Methods": "POST",
}


@dataclass
class Settings:
    db: str
    deadline: float = 3.0
    body_timeout: float = 10.0  # seconds for a request body to arrive, else 60008
    clock_offset: float = 0.0
    shared_limiter: str | None = None  # a file shared by worker processes (serve --workers N)
    access_log: bool = True
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line
    redis: str | None = None  # shared rate limits across instances
    console: bool = True  # the web console at /console (serve --no-console turns it off)
    console_bind: str | None = None  # None: the console answers on loopback only
    console_token: str | None = None  # what the console needs to sign for hosted apps
    journal_size: int = 1000  # answered /v4 requests kept in memory per worker (0: none)
    throttle_hints: bool = False  # 60007 also carries Retry-After / X-RateLimit-* headers


def create_app(settings: Settings) -> Starlette:
    storage = make_storage(settings.db)
    limiter: RateLimiter | None = (SharedFileLimiter(settings.shared_limiter)
                                   if settings.shared_limiter else None)
    if settings.redis:
        limiter = RedisLimiter(settings.redis, fallback=limiter,
                               on_fallback=observability.set_limiter_fallback)
    dispatcher = Dispatcher(storage, Clock(settings.clock_offset), deadline=settings.deadline,
                            body_timeout=settings.body_timeout,
                            limiter=limiter)
    openapi_body = openapi_document()
    journal = Journal(settings.journal_size)
    emulator = Emulator(storage, dispatcher.clock, dispatcher.limiter,  # docs/emulator.md
                        deadline=settings.deadline)
    dispatcher.faults = emulator

    async def answer(method: str, path: str, service: str | None, command: str | None,
                     query: bytes, read_body: BodyReader, declared: str | None
                     ) -> tuple[bytes, CallInfo]:
        """One /v4 call, answered and accounted for (metrics, access log, journal)."""
        started = time.perf_counter()
        info = CallInfo()
        await emulator.refresh()  # fault rules and clock offset changed by the CLI or a worker
        body = await dispatcher.dispatch(method, service, command, query, read_body, info)
        elapsed = time.perf_counter() - started
        observability.observe(info.command, info.code, elapsed)
        if not access_log.disabled:
            access_log.info(
                "%s %s sdkappid=%s identifier=%s code=%d bytes=%d ms=%.2f", method,
                path, info.sdkappid, info.identifier, info.code, len(body),
                elapsed * 1000, extra={"fields": {
                    "method": method, "path": path, "command": info.command,
                    "sdkappid": info.sdkappid, "identifier": info.identifier, "code": info.code,
                    "bytes": len(body), "ms": round(elapsed * 1000, 3)}})
        journal.record(method, path, info.command, info.sdkappid, info.identifier, info.code,
                       elapsed * 1000, info.body_bytes if info.body_bytes >= 0
                       else declared_size(declared), len(body))
        return body, info

    def headers_for(body: bytes, info: CallInfo) -> list[tuple[bytes, bytes]]:
        headers = [*_ANSWER_HEADERS, (b"content-length", b"%d" % len(body))]
        if settings.throttle_hints and info.code == 60007:
            headers += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in emulator_control.throttle_headers(info).items()]
        return headers

    async def v4(request: Request) -> Response:
        """/v4 calls that reach Starlette: paths the front does not take (60009), OPTIONS."""
        if request.method == "OPTIONS":
            return _preflight(request)
        params = request.path_params
        body, info = await answer(
            request.method, _url_path(request.scope), params.get("service"), params.get("command"),
            request.scope["query_string"], functools.partial(read_body, request),
            request.headers.get("content-length"))
        response = Response(body)
        response.raw_headers = headers_for(body, info)
        return response

    async def v4_front(scope: Scope, receive: Receive, send: Send) -> None:
        """A /v4/{service}/{command} call straight from the server: no router, no Request."""
        service, command = _command_of(scope["path"])
        declared = _header(scope, b"content-length")
        body, info = await answer(
            scope["method"], _url_path(scope), service, command, scope["query_string"],
            functools.partial(read_asgi_body, receive, declared), declared)
        await send({"type": "http.response.start", "status": 200,
                    "headers": headers_for(body, info)})
        await send({"type": "http.response.body", "body": body})

    async def ping_front(scope: Scope, receive: Receive, send: Send) -> None:
        """The trivial endpoint of bench/, on the same front as /v4 (the ceiling)."""
        await read_asgi_body(receive, _header(scope, b"content-length"), 1024 * 1024)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_ANSWER_HEADERS, (b"content-length", b"%d" % len(BENCH_BODY))]})
        await send({"type": "http.response.body", "body": BENCH_BODY})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_body)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """503 until the database (and Redis, when configured) answer."""
        checks = {"database": await _database_ready(storage)}
        if isinstance(limiter, RedisLimiter):
            checks["redis"] = await limiter.ping()
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                            status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        body, content_type = observability.render(storage)
        return Response(body, headers={"Content-Type": content_type})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        try:
            yield
        finally:
            if isinstance(limiter, RedisLimiter):
                await limiter.close()
            await storage.close()

    all_methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    routes = [
        # First the REST API (no other route matches /v4/*/*): routes are tried in order.
        Route("/v4/{service}/{command}", v4, methods=all_methods),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extension_routes(ConsoleAccess(settings.console, settings.console_bind,
                                        settings.console_token), dispatcher, journal, v4),
        *emulator_control.routes(dispatcher, emulator, CORS_HEADERS),  # /_timserver/faults...
        Route("/{path:path}", v4, methods=all_methods),  # anything else: 60009 (or 60008)
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    # a request target no route can match ("*", "x/v4/..."): 60009 too, not Starlette's 404
    app.router.default = request_response(v4)
    app.state.dispatcher = dispatcher
    app.state.storage = storage
    app.state.journal = journal
    app.state.emulator = emulator
    return Front(app, v4_front, ping_front if os.environ.get(BENCH_ENV) == "1" else None)


class Front:
    """The ASGI application: /v4 calls go straight to their handler; the rest (console,
    emulator control, health, metrics, OpenAPI, lifespan) to the Starlette app it wraps.

    The router, ``Request`` and ``Response`` cost more than a third of a small call's own work;
    /v4 needs none of them (its answers are always 200 with fixed headers).
    """

    def __init__(self, app: Starlette, v4: ASGIApp, ping: ASGIApp | None) -> None:
        self.app = app
        self.state = app.state
        self._v4 = v4
        self._ping = ping

    def __getattr__(self, name: str) -> Any:  # router, routes... of the Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/v4/") and scope["method"] != "OPTIONS":
                return await self._v4(scope, receive, send)
            if path == BENCH_PATH and self._ping is not None:
                return await self._ping(scope, receive, send)
        await self.app(scope, receive, send)


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]*")


_PLAIN_V4_PATHS = frozenset(f"/v4/{c.service}/{c.name}" for c in COMMANDS)


def _url_path(scope: Scope) -> str:
    """``request.url.path``; for a plain path (the commands' own at once), without parsing a
    whole URL (Starlette's URL keeps the path as it is when the scope has a server address)."""
    path: str = scope["path"]
    if path in _PLAIN_V4_PATHS or (scope.get("server") and _PLAIN_PATH.fullmatch(path)):
        return path
    return Request(scope).url.path


def _command_of(path: str) -> tuple[str | None, str | None]:
    """(service, command) of ``/v4/{service}/{command}``; (None, None) for any other path
    under /v4/ (60009), as the router's ``[^/]+`` segments would say."""
    service, slash, command = path[4:].partition("/")
    if service and slash and command and "/" not in command:
        return service, command
    return None, None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


_ANSWER_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                   for name, value in {**CORS_HEADERS, "Content-Type": JSON_TYPE}.items()]


def _preflight(request: Request) -> Response:
    headers = dict(CORS_HEADERS)
    asked = request.headers.get("access-control-request-headers")
    if asked:  # let browsers send what they asked for (a JSON Content-Type, typically)
        headers["Access-Control-Allow-Headers"] = f"X-Requested-With, {asked}"[:1024]
    headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
    headers["Access-Control-Max-Age"] = "86400"
    return Response(b"", status_code=200, headers=headers)


SETTINGS_ENV = "TIMSERVER_SERVE_SETTINGS"


def app_from_env() -> emulator_control.DropGuard:
    """Factory for ``uvicorn --factory`` and worker processes: settings come as JSON in env."""
    import json
    import os

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging(settings)
    return emulator_control.DropGuard(create_app(settings))  # fault rules may drop connections


def configure_logging(settings: Settings) -> None:
    """Per process (workers are spawned): timserver's own lines to stderr, at the chosen level."""
    observability.configure_logging(settings.log_level, settings.log_format)
    access_log.disabled = not settings.access_log


async def _database_ready(storage: Storage) -> bool:
    try:
        async with asyncio.timeout(2):
            await storage.ping()
        return True
    except Exception:
        return False
