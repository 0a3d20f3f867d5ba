"""The ASGI application: routes, headers, the body stream, the access log.

Every answer under ``/v4/`` (and to any unknown path) is HTTP 200 with Tencent's envelope and
the CORS headers of Tencent's samples (spec §1.3); all decisions are in ``dispatch.py``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..service.clock import Clock
from ..service.ratelimit import SharedFileLimiter
from ..storage import make_storage
from .dispatch import BodyTooLarge, CallInfo, Dispatcher
from .openapi import openapi_document

access_log = logging.getLogger("timserver.access")

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
    clock_offset: float = 0.0
    shared_limiter: str | None = None  # a file shared by worker processes (serve --workers N)
    access_log: bool = True
    log_level: str = "info"


def _body_reader(request: Request):
    async def read(limit: int) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        return b"".join(chunks)
    return read


def create_app(settings: Settings) -> Starlette:
    storage = make_storage(settings.db)
    limiter = SharedFileLimiter(settings.shared_limiter) if settings.shared_limiter else None
    dispatcher = Dispatcher(storage, Clock(settings.clock_offset), deadline=settings.deadline,
                            limiter=limiter)
    openapi_body = openapi_document()

    async def v4(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight(request)
        started = time.perf_counter()
        info = CallInfo()
        params = request.path_params
        body = await dispatcher.dispatch(
            request.method, params.get("service"), params.get("command"),
            request.scope["query_string"], _body_reader(request), info)
        access_log.info(
            "%s %s sdkappid=%s identifier=%s code=%d bytes=%d ms=%.2f", request.method,
            request.url.path, info.sdkappid, info.identifier, info.code, len(body),
            (time.perf_counter() - started) * 1000)
        return Response(body, headers={**CORS_HEADERS, "Content-Type": JSON_TYPE})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_body)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        try:
            yield
        finally:
            await storage.close()

    all_methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v4/{service}/{command}", v4, methods=all_methods),
        Route("/{path:path}", v4, methods=all_methods),  # anything else: 60009 (or 60008)
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dispatcher = dispatcher
    app.state.storage = storage
    return app


def _preflight(request: Request) -> Response:
    headers = dict(CORS_HEADERS)
    asked = request.headers.get("access-control-request-headers")
    if asked:  # let browsers send what they asked for (a JSON Content-Type, typically)
        headers["Access-Control-Allow-Headers"] = f"X-Requested-With, {asked}"[:1024]
    headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
    headers["Access-Control-Max-Age"] = "86400"
    return Response(b"", status_code=200, headers=headers)


SETTINGS_ENV = "TIMSERVER_SERVE_SETTINGS"


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and worker processes: settings come as JSON in env."""
    import json
    import os

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging(settings)
    return create_app(settings)


def configure_logging(settings: Settings) -> None:
    """Per process (workers are spawned): timserver's own lines to stderr, at the chosen level."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(name)s %(message)s")
    access_log.disabled = not settings.access_log
