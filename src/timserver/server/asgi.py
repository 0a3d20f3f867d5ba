"""The ASGI application: the front, the routes, health, metrics and the lifespan.

Every answer under ``/v4/`` (and to any unknown path) is HTTP 200 with Tencent's envelope and
the CORS headers of Tencent's samples (docs/protocol.md §3); ``pipeline.py`` makes every API
answer, ``dispatch.py`` decides a /v4 call. Plugins (the console, the emulator:
``timserver.wiring``) add routes and hooks through ``hooks.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..service.clock import Clock
from ..service.ratelimit import RateLimiter, RedisLimiter, SharedFileLimiter
from ..storage import Storage, make_storage
from . import observability, transport
from .access import ConsoleAccess
from .bodies import read_asgi_body
from .callbacks import CallbackSender
from .dispatch import Dispatcher
from .envelope import ALL_METHODS, ANSWER_HEADERS
from .hooks import AbortConnection, Plugin, overrides
from .journal import Journal
from .openapi import openapi_document
from .pipeline import Pipeline, client_ip, url_path

#: ``TIMSERVER_BENCH_ENDPOINTS=1`` adds a hidden route answering a fixed small JSON body on the
#: same stack (not in the OpenAPI document): the ceiling the benchmarks compare with (bench/).
BENCH_ENV = "TIMSERVER_BENCH_ENDPOINTS"
BENCH_PATH = "/_bench/ping"
BENCH_BODY = b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'


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
    emulator: bool = True  # the emulator's powers (serve --no-emulator: production mode)
    record_bodies: bool = False  # the journal keeps request and response bodies (emulator only)


def create_app(settings: Settings, plugins: Sequence[Plugin] = ()) -> Front:
    """The server, with ``plugins`` (``timserver.wiring.make_app`` picks them from settings)."""
    storage = make_storage(settings.db)
    limiter: RateLimiter | None = (SharedFileLimiter(settings.shared_limiter)
                                   if settings.shared_limiter else None)
    if settings.redis:
        limiter = RedisLimiter(settings.redis, fallback=limiter,
                               on_fallback=observability.set_limiter_fallback)
    # Third-party callbacks: part of every server (not a choice of plugins), a plugin only for
    # its lifespan and its endpoint.
    callbacks = CallbackSender()
    plugins = [callbacks, *plugins]
    dispatcher = Dispatcher(storage, Clock(), deadline=settings.deadline,
                            body_timeout=settings.body_timeout, limiter=limiter, plugins=plugins,
                            events=callbacks)
    # serve --workers N: the journal's copies go in the folder the workers share (that of the
    # rate-limit file), so each worker's reads show every worker's calls
    journal = Journal(settings.journal_size,
                      record_bodies=settings.record_bodies and settings.emulator,
                      shared_dir=(os.path.dirname(settings.shared_limiter)
                                  if settings.shared_limiter else None))
    access = ConsoleAccess(settings.console, settings.console_bind, settings.console_token)
    pipeline = Pipeline(dispatcher, journal=journal, access=access, plugins=plugins,
                        throttle_hints=settings.throttle_hints, callbacks=callbacks)
    mode = "emulator" if settings.emulator else "production"

    async def v4_front(scope: Scope, receive: Receive, send: Send) -> None:
        """A /v4/{service}/{command} call straight from the server: no router, no Request."""
        service, command = _command_of(scope["path"])
        declared = _header(scope, b"content-length")
        body, call = await pipeline.v4(
            scope["method"], url_path(scope), service, command, scope["query_string"],
            functools.partial(read_asgi_body, receive, declared), declared,
            functools.partial(_until_disconnect, receive), client_ip(scope))
        await send({"type": "http.response.start", "status": 200,
                    "headers": pipeline.headers_for(body, call)})
        await send({"type": "http.response.body", "body": body})

    async def ping_front(scope: Scope, receive: Receive, send: Send) -> None:
        """The trivial endpoint of bench/, on the same front as /v4 (the ceiling)."""
        await read_asgi_body(receive, _header(scope, b"content-length"), 1024 * 1024)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*ANSWER_HEADERS, (b"content-length", b"%d" % len(BENCH_BODY))]})
        await send({"type": "http.response.body", "body": BENCH_BODY})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_body)

    async def healthz(request: Request) -> Response:
        # mode: "emulator" (any admin UserSig can reset, move clocks, inject faults) or
        # "production" (serve --no-emulator)
        return JSONResponse({"status": "ok", "mode": mode})

    async def readyz(request: Request) -> Response:
        """503 while the database does not answer or its last write failed; else 200, with
        status "degraded" while a check that calls can do without fails (Redis: limits are
        per instance; PostgreSQL's LISTEN: versions are read per call). docs/deploy.md."""
        checks = {"database": await _database_ready(storage), **await _storage_health(storage)}
        if isinstance(limiter, RedisLimiter):
            checks["redis"] = await limiter.ping()
        ready = checks["database"] and checks.get("writes", True)
        status = "unavailable" if not ready else "ready" if all(checks.values()) else "degraded"
        return JSONResponse({"status": status, "checks": checks},
                            status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        body, content_type = observability.render(storage.capabilities.pool_stats)
        return Response(body, headers={"Content-Type": content_type})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        started = [p for p in plugins if overrides(p, "startup")]
        for plugin in started:
            await plugin.startup()
        try:
            yield
        finally:
            for plugin in reversed([p for p in plugins if overrides(p, "shutdown")]):
                await plugin.shutdown()
            if isinstance(limiter, RedisLimiter):
                await limiter.close()
            await storage.close()

    routes = [
        # First the REST API (no other route matches /v4/*/*): routes are tried in order.
        Route("/v4/{service}/{command}", pipeline.unknown, methods=ALL_METHODS),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *pipeline.routes(),  # the plugins' endpoints and pages (console, emulator)
        Route("/{path:path}", pipeline.unknown, methods=ALL_METHODS),  # anything else: 60009
    ]
    # the document, once the plugins' endpoints are known: those of the plugins this server runs
    openapi_body = openapi_document(pipeline.declared)
    app = Starlette(routes=routes, lifespan=lifespan)
    # a request target no route can match ("*", "x/v4/..."): 60009 too, not Starlette's 404
    app.router.default = request_response(pipeline.unknown)
    app.state.dispatcher = dispatcher
    app.state.pipeline = pipeline
    app.state.storage = storage
    app.state.journal = journal
    app.state.callbacks = callbacks
    app.state.mode = mode
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
        try:
            if scope["type"] == "http":
                path = scope["path"]
                if path.startswith("/v4/") and scope["method"] != "OPTIONS":
                    return await self._v4(scope, receive, send)
                if path == BENCH_PATH and self._ping is not None:
                    return await self._ping(scope, receive, send)
            await self.app(scope, receive, send)
        except AbortConnection:  # a plugin asked for no answer at all (a dropped connection)
            if not await transport.abort(send):
                raise


def _command_of(path: str) -> tuple[str | None, str | None]:
    """(service, command) of ``/v4/{service}/{command}``; (None, None) for any other path
    under /v4/ (60009), as the router's ``[^/]+`` segments would say."""
    service, slash, command = path[4:].partition("/")
    if service and slash and command and "/" not in command:
        return service, command
    return None, None


async def _until_disconnect(receive: Receive) -> None:
    """Returns when the client hangs up (to be awaited only once the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


SETTINGS_ENV = "TIMSERVER_SERVE_SETTINGS"


def configure_logging(settings: Settings) -> None:
    """Per process (workers are spawned): timserver's own lines to stderr, at the chosen level."""
    observability.configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("timserver.access").disabled = not settings.access_log


async def _storage_health(storage: Storage) -> dict[str, bool]:
    """The storage's own checks (``writes``, ``listener``), when it has any."""
    try:
        async with asyncio.timeout(2):
            return dict(await storage.capabilities.health())
    except Exception:
        return {}  # the database check says what is wrong


async def _database_ready(storage: Storage) -> bool:
    try:
        async with asyncio.timeout(2):
            await storage.ping()
        return True
    except Exception:
        return False
