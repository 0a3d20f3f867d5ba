"""The emulator's HTTP side: control endpoints, throttle hints, dropped connections.

Control endpoints, each behind an app's admin credentials in the query (``sdkappid``,
``identifier``, ``usersig``; checked by ``Dispatcher.authenticate(..., require_random=False)``,
exactly like a /v4 call), so that an app only ever sees and touches its own rules and data:

    GET  /_timserver/faults           the app's fault rules            → {"Rules": [...]}
    POST /_timserver/faults           add one rule (its JSON form)     → {"Rule": {...}}
    POST /_timserver/faults/clear     {} all rules, or {"Id": N} one   → {"Deleted": n}
    POST /_timserver/reset            {} accounts and kicks; "Faults": true, "Clock": true too
    GET  /_timserver/clock            the app's clock      → {"Offset", "ServerOffset", "Now", ...}
    POST /_timserver/clock            {"Offset": s} or {"Advance": s}: the app's own offset only

Every answer, good or bad, is Tencent's envelope with HTTP 200 (never a 500).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..protocol.errors import TimError
from ..server.bodies import read_json_object
from ..server.dispatch import CallInfo, Dispatcher, parse_query
from ..storage import App, StorageError
from . import faults, state
from .faults import DropConnection, RuleError
from .state import Emulator, StateError

log = logging.getLogger("timserver.emulator")

MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_BYTES = 16 * 1024
BODY_TIMEOUT = 10.0
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
JSON_TYPE = "application/json; charset=utf-8"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

Handler = Callable[[Request, App], Awaitable[dict[str, Any]]]


def _answer(body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(_encoder.encode(body), headers={**headers, "Content-Type": JSON_TYPE})


def _ok(fields: dict[str, Any]) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **fields}


def _fail(code: int, info: str) -> dict[str, Any]:
    return {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}


async def _json_body(request: Request) -> dict[str, Any]:
    return await read_json_object(request, MAX_BODY_BYTES, BODY_TIMEOUT)


def _only(body: dict[str, Any], *names: str) -> None:
    unknown = [key for key in body if key not in names]
    if unknown:
        accepted = ", ".join(names) if names else "no field"
        raise TimError(70402, f"Invalid parameters: unknown field {unknown[0]!r} (this endpoint "
                              f"takes {accepted}).")


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if type(value) is not bool:
        raise TimError(70402, f"Invalid parameters: {name} must be true or false.")
    return value


def _seconds(body: dict[str, Any], name: str) -> float:
    value = body[name]
    if type(value) not in (int, float) or not math.isfinite(value):
        raise TimError(70402, f"Invalid parameters: {name} must be a number of seconds.")
    return value


def routes(dispatcher: Dispatcher, emulator: Emulator, cors: dict[str, str]) -> list[Route]:
    """The control routes, to register before the catch-all route."""
    storage = dispatcher.storage

    def endpoint(handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            if request.method == "OPTIONS":
                return Response(b"", headers={
                    **cors, "Access-Control-Allow-Methods": ", ".join([*handlers, "OPTIONS"]),
                    "Access-Control-Max-Age": "86400"})
            info = CallInfo(command=request.url.path)
            try:
                handler = handlers.get(request.method)
                if handler is None:
                    raise TimError(60008, f"Malformed HTTP request: method {request.method} is "
                                          f"not supported here; use {' or '.join(handlers)}.")
                raw = request.scope.get("query_string", b"")
                if len(raw) > MAX_QUERY_BYTES:
                    raise TimError(60002, f"HTTP parse error: the query string is longer than "
                                          f"{MAX_QUERY_BYTES} bytes.")
                await emulator.refresh()  # the clock, before the UserSig is checked
                app = await dispatcher.authenticate(parse_query(raw), info, require_random=False)
                body = _ok(await handler(request, app))
            except TimError as err:
                info.code = err.code
                body = _fail(err.code, err.info)
            except (RuleError, StateError) as exc:
                info.code = 70402
                body = _fail(70402, f"Invalid parameters: {exc}.")
            except StorageError:
                log.exception("storage failed in %s", request.url.path)
                info.code = 70500
                body = _fail(70500, "Internal server error: the database failed; retry.")
            except Exception:
                log.exception("internal error in %s", request.url.path)
                info.code = 70500
                body = _fail(70500, "Internal server error: retry.")
            log.info("%s %s sdkappid=%s code=%d", request.method, request.url.path,
                     info.sdkappid, info.code)
            return _answer(body, cors)
        return serve

    async def list_faults(request: Request, app: App) -> dict[str, Any]:
        rules = await state.list_rules(storage, app.sdkappid)
        return {"Rules": [rule.to_json() for rule in rules]}

    async def add_fault(request: Request, app: App) -> dict[str, Any]:
        spec = faults.parse_rule(await _json_body(request))
        rule = await state.add_rule(storage, app.sdkappid, spec)
        await emulator.refresh(force=True)  # this process's own change, at once
        return {"Rule": rule.to_json()}

    async def clear_faults(request: Request, app: App) -> dict[str, Any]:
        body = await _json_body(request)
        _only(body, "Id")
        rule_id = body.get("Id")
        if rule_id is not None and (type(rule_id) is not int or not 1 <= rule_id < 2**63):
            raise TimError(70402, "Invalid parameters: Id must be a rule's id (an integer).")
        deleted = await state.clear_rules(storage, app.sdkappid, rule_id)
        await emulator.refresh(force=True)  # this process's own change, at once
        return {"Deleted": deleted}

    async def reset(request: Request, app: App) -> dict[str, Any]:
        body = await _json_body(request)
        _only(body, "Faults", "Clock")
        done = await state.reset_app(storage, app.sdkappid, faults=_flag(body, "Faults"),
                                     clock=_flag(body, "Clock"))
        await emulator.forget_rates(app.sdkappid)
        await emulator.refresh(force=True)  # this process's own change, at once
        return done

    def clock_answer(app: App) -> dict[str, Any]:
        # Offset: the app's own; ServerOffset: the server-wide part (the operator's, every app);
        # Now: the time the app's UserSigs and kicks are judged by.
        return {"Offset": emulator.app_offset(app.sdkappid),
                "ServerOffset": emulator.clock.offset,
                "Now": int(emulator.clock.now(app.sdkappid)), "WallClock": int(time.time())}

    async def get_clock(request: Request, app: App) -> dict[str, Any]:
        return clock_answer(app)

    async def set_clock(request: Request, app: App) -> dict[str, Any]:
        body = await _json_body(request)
        _only(body, "Offset", "Advance")
        if ("Offset" in body) == ("Advance" in body):
            raise TimError(70402, "Invalid parameters: give Offset (the app's own offset, in "
                                  "seconds) or Advance (seconds to add to it), one of them.")
        if "Offset" in body:  # the app's own offset: never another app's time
            await state.set_app_clock(storage, app.sdkappid, _seconds(body, "Offset"))
        else:
            await state.advance_app_clock(storage, app.sdkappid, _seconds(body, "Advance"))
        await emulator.refresh(force=True)  # this process's own change, at once
        return clock_answer(app)

    return [
        Route("/_timserver/faults", endpoint({"GET": list_faults, "POST": add_fault}),
              methods=ALL_METHODS),
        Route("/_timserver/faults/clear", endpoint({"POST": clear_faults}), methods=ALL_METHODS),
        Route("/_timserver/reset", endpoint({"POST": reset}), methods=ALL_METHODS),
        Route("/_timserver/clock", endpoint({"GET": get_clock, "POST": set_clock}),
              methods=ALL_METHODS),
    ]


# --- serve --throttle-hints ----------------------------------------------------------------------


def throttle_headers(info: CallInfo) -> dict[str, str]:
    """On a 60007: ``Retry-After`` (whole seconds, at least 1) and ``X-RateLimit-Limit`` (calls
    per 1 s window), ``X-RateLimit-Remaining`` (0) and ``X-RateLimit-Reset`` (seconds until a call
    is accepted again, with millisecond precision). The body stays exactly Tencent's."""
    if info.code != 60007:
        return {}
    decision = info.rate
    wait = decision.retry_after if decision is not None else 1.0
    headers = {"Retry-After": str(max(1, math.ceil(wait))),
               "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": f"{max(wait, 0.001):.3f}"}
    if decision is not None and decision.limit > 0:
        headers["X-RateLimit-Limit"] = str(decision.limit)
    return headers


# --- dropped connections -------------------------------------------------------------------------


class DropGuard:
    """ASGI wrapper of a server process: a ``DropConnection`` aborts the socket, no answer.

    It needs the server's transport, reached through the ``send`` callable that uvicorn gives
    (a bound method of its request cycle); elsewhere the exception goes on to the server.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # app.state, app.router... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except DropConnection as drop:
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is None:
                raise
            log.info("%s %s: connection dropped (fault rule %d)", scope.get("method"),
                     scope.get("path"), drop.rule_id)
            transport.abort()
            for _ in range(20):  # let the server see the loss, so that it sends nothing
                if getattr(cycle, "disconnected", True):
                    break
                await asyncio.sleep(0)
