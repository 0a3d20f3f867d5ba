"""The ASGI application: routes, headers, the body stream, the access log.

Every answer under ``/v4/`` (and to any unknown path) is HTTP 200 with Tencent's envelope and
the CORS headers of Tencent's samples (spec §1.3); all decisions are in ``dispatch.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response

from ..emulator import control as emulator_control
from ..emulator.state import Emulator
from ..service.clock import Clock
from ..service.ratelimit import RateLimiter, RedisLimiter, SharedFileLimiter
from ..storage import Storage, make_storage
from . import observability
from .bodies import read_body
from .console import ConsoleAccess, extension_routes
from .dispatch import CallInfo, Dispatcher
from .journal import Journal, body_size
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


def _body_reader(request: Request, seen: list[int] | None = None):
    async def read(limit: int) -> bytes:
        body = await read_body(request, limit)
        if seen is not None:
            seen.append(len(body))
        return body
    return read


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

    async def v4(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight(request)
        started = time.perf_counter()
        info = CallInfo()
        params = request.path_params
        read: list[int] = []
        await emulator.refresh()  # fault rules and clock offset changed by the CLI or a worker
        body = await dispatcher.dispatch(
            request.method, params.get("service"), params.get("command"),
            request.scope["query_string"], _body_reader(request, read), info)
        elapsed = time.perf_counter() - started
        observability.observe(info.command, info.code, elapsed)
        path = _url_path(request)
        if not access_log.disabled:
            access_log.info(
                "%s %s sdkappid=%s identifier=%s code=%d bytes=%d ms=%.2f", request.method,
                path, info.sdkappid, info.identifier, info.code, len(body),
                elapsed * 1000, extra={"fields": {
                    "method": request.method, "path": path, "command": info.command,
                    "sdkappid": info.sdkappid, "identifier": info.identifier, "code": info.code,
                    "bytes": len(body), "ms": round(elapsed * 1000, 3)}})
        journal.record(method=request.method, path=path, command=info.command,
                       sdkappid=info.sdkappid, identifier=info.identifier, code=info.code,
                       latency_ms=(time.perf_counter() - started) * 1000,
                       request_bytes=body_size(read, request.headers.get("content-length")),
                       response_bytes=len(body))
        if settings.throttle_hints and info.code == 60007:
            headers = {**CORS_HEADERS, "Content-Type": JSON_TYPE}
            headers.update(emulator_control.throttle_headers(info))
            return Response(body, headers=headers)
        return _json_answer(body)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_body)

    async def bench_ping(request: Request) -> Response:  # the ceiling of bench/run.py
        return _json_answer(BENCH_BODY)

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
        *([Route(BENCH_PATH, bench_ping, methods=["GET", "POST"])]
          if os.environ.get(BENCH_ENV) == "1" else []),  # hidden, for bench/ only
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
    return app


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]*")


def _url_path(request: Request) -> str:
    """``request.url.path``; for a plain path (the usual /v4 one), without parsing a whole URL
    (Starlette's URL keeps the path as it is when the scope has a server address)."""
    path = request.scope["path"]
    if request.scope.get("server") and _PLAIN_PATH.fullmatch(path):
        return path
    return request.url.path


_ANSWER_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                   for name, value in {**CORS_HEADERS, "Content-Type": JSON_TYPE}.items()]


def _json_answer(body: bytes) -> Response:
    """``Response(body, headers={**CORS_HEADERS, "Content-Type": JSON_TYPE})``, the same bytes on
    the wire, without building and encoding the headers again for each answer."""
    response = Response(body)
    response.raw_headers = [*_ANSWER_HEADERS, (b"content-length", str(len(body)).encode("latin-1"))]
    return response


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
