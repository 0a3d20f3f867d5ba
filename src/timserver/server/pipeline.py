"""The one path every API request takes, whoever it is for.

    /v4/{service}/{command}   Dispatcher: before_call hooks → checks 1-9 → around_handler
                              hooks → handler under the deadline
    /_timserver/... endpoints access (UserSig | console place | console token) → before_call
                              hooks → handler
    then, for both            exception → ErrorCode (``envelope.as_failure``) → envelope →
                              headers (CORS, throttle hints) → record: metrics, access log,
                              journal (/v4 calls and the console's actions that run a /v4
                              command), with every request-derived text clipped once, here

Anything else (an unknown path, a page the console refuses) is answered like an unknown /v4
command: 60009. Plugins (``hooks.py``) add endpoints, routes and hook calls; this module never
knows them by name.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..protocol.commands import BY_NAME, COMMANDS
from ..protocol.errors import TimError
from ..service.events import ORIGIN, Origin
from . import observability
from .access import ConsoleAccess
from .bodies import read_body, read_json_object
from .dispatch import BodyReader, Dispatcher, parse_query
from .envelope import ALL_METHODS, ANSWER_HEADERS, CORS_HEADERS, JSON_TYPE, as_failure, fail, ok
from .hooks import Access, Call, Endpoint, EndpointCall, Gates, Plugin, ServerHandles
from .journal import Journal, declared_size

access_log = logging.getLogger("timserver.access")

MAX_QUERY_BYTES = 16 * 1024  # an endpoint's query string (a /v4 query is bounded by the header)
ENDPOINT_BODY_TIMEOUT = 10.0
_ENDPOINT_HEADERS = {"Content-Type": JSON_TYPE, "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff"}
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]*")
_PLAIN_V4_PATHS = frozenset(f"/v4/{c.service}/{c.name}" for c in COMMANDS)

Handler = Callable[[Request], Awaitable[Response]]


class Pipeline:
    def __init__(self, dispatcher: Dispatcher, *, journal: Journal, access: ConsoleAccess,
                 plugins: Sequence[Plugin] = (), throttle_hints: bool = False,
                 callbacks: Any = None) -> None:
        self.dispatcher = dispatcher
        self.journal = journal
        self.access = access
        self.plugins = tuple(plugins)
        self.throttle_hints = throttle_hints
        self.declared: list[tuple[str, Endpoint]] = []  # the plugins' endpoints (routes())
        handles = ServerHandles(
            storage=dispatcher.storage, clock=dispatcher.clock, limiter=dispatcher.limiter,
            apps=dispatcher.apps, deadline=dispatcher.deadline,
            authenticate=dispatcher.authenticated, check_rate=dispatcher.check_rate,
            run=dispatcher.run, journal=journal, access=access, presence=dispatcher.presence,
            callbacks=callbacks)
        for plugin in self.plugins:
            plugin.setup(handles)

    # --- /v4 ------------------------------------------------------------------------------------

    async def v4(self, method: str, path: str, service: str | None, command: str | None,
                 query: bytes, read: BodyReader, declared: str | None,
                 disconnected: Callable[[], Awaitable[None]] | None = None,
                 client: str = "") -> tuple[bytes, Call]:
        """One /v4 call, answered and recorded."""
        started = time.perf_counter()
        call = Call(disconnected=disconnected, client_ip=client)
        body = await self.dispatcher.dispatch(method, service, command, query, read, call)
        elapsed = time.perf_counter() - started
        observability.observe(call.command, call.code, elapsed)
        self.record(method, path, call, elapsed, len(body),
                    call.body_bytes if call.body_bytes >= 0 else declared_size(declared), body)
        return body, call

    def headers_for(self, body: bytes, call: Call) -> list[tuple[bytes, bytes]]:
        headers = [*ANSWER_HEADERS, (b"content-length", b"%d" % len(body))]
        if self.throttle_hints and call.code == 60007:
            headers += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in throttle_headers(call).items()]
        return headers

    async def unknown(self, request: Request) -> Response:
        """What reaches Starlette under /v4 (paths the front does not take: 60009) or matches no
        other route, and what the console refuses: a /v4 answer. OPTIONS: CORS preflight."""
        if request.method == "OPTIONS":
            return _preflight(request)
        params = request.path_params
        body, call = await self.v4(
            request.method[:16], url_path(request.scope), params.get("service"),
            params.get("command"), request.scope["query_string"],
            functools.partial(read_body, request), request.headers.get("content-length"),
            client=client_ip(request.scope))
        response = Response(body)
        response.raw_headers = self.headers_for(body, call)
        return response

    # --- extension endpoints --------------------------------------------------------------------

    def endpoint(self, decl: Endpoint) -> Route:
        """A route answering ``decl`` through the pipeline."""
        methods = " or ".join(decl.handlers)

        async def serve(request: Request) -> Response:
            if decl.access not in (Access.ADMIN, Access.SIGNED) and not self.access.allows(request):
                return await self.unknown(request)  # the console is not here for this caller
            if request.method == "OPTIONS" and decl.cors:
                return Response(b"", headers={
                    **CORS_HEADERS, "Access-Control-Allow-Methods": f"{', '.join(decl.handlers)}"
                    ", OPTIONS", "Access-Control-Max-Age": "86400"})
            started = time.perf_counter()
            call = Call(command=decl.journal_as or decl.path, client_ip=client_ip(request.scope))
            try:
                handler = decl.handlers.get(request.method)
                if handler is None:
                    raise TimError(60008, f"Malformed HTTP request: method {request.method} is "
                                          f"not supported here; use {methods}.")
                raw = request.scope.get("query_string", b"")
                if len(raw) > MAX_QUERY_BYTES:
                    raise TimError(60002, f"HTTP parse error: the query string is longer than "
                                          f"{MAX_QUERY_BYTES} bytes.")
                params = parse_query(raw)
                for hook in self.dispatcher.before:
                    await hook(call)
                app = None
                if decl.access in (Access.ADMIN, Access.SIGNED):
                    app = await self.dispatcher.authenticated(
                        params, call, require_random=False, admin=decl.access is Access.ADMIN)
                    ORIGIN.set(Origin(call.identifier or "", call.client_ip))
                elif decl.access is Access.CONSOLE_TOKEN:
                    self.access.require_token(request)
                result = await handler(EndpointCall(
                    request, params, app, functools.partial(_json_object, request, call),
                    call.identifier))
                if isinstance(result, Response):  # a download of its own
                    self.record(request.method[:16], url_path(request.scope), call,
                                time.perf_counter() - started, len(result.body), -1)
                    return result
                body = ok(result)
            except Exception as exc:
                err = as_failure(exc, what=decl.path, deadline=self.dispatcher.deadline)
                call.code = err.code
                body = fail(err.code, err.info)
            if decl.journal_as and call.request_body is not None:
                call.request = _parsed(decl.journal_as, call.request_body)  # its UserIDs
            self.record(request.method[:16], url_path(request.scope), call,
                        time.perf_counter() - started, len(body),
                        len(call.request_body) if call.request_body is not None else -1,
                        body if decl.journal_as else None)
            headers = {**_ENDPOINT_HEADERS, **(CORS_HEADERS if decl.cors else {})}
            return Response(body, headers=headers)
        return Route(decl.path, serve, methods=ALL_METHODS)

    def gate(self, access: Access, handler: Handler) -> Handler:
        """A plain route (a page, a file) for the callers ``access`` lets in; the others get
        the answer of an unknown path."""
        async def gated(request: Request) -> Response:
            if not self.access.allows(request):
                return await self.unknown(request)
            if access is Access.CONSOLE_TOKEN and not self.access.token_ok(request):
                return await self.unknown(request)
            return await handler(request)
        return gated

    def routes(self) -> list[BaseRoute]:
        """Every plugin's endpoints and plain routes, in the plugins' order; the endpoints'
        declarations stay in ``declared`` (plugin name, endpoint) for the OpenAPI document."""
        found: list[BaseRoute] = []
        gates = Gates(guard=self.gate, unknown=self.unknown)
        self.declared = []
        for plugin in self.plugins:
            endpoints = list(plugin.endpoints())
            self.declared += [(plugin.name, decl) for decl in endpoints]
            found += [self.endpoint(decl) for decl in endpoints]
            found += plugin.routes(gates)
        return found

    # --- recording ------------------------------------------------------------------------------

    def record(self, method: str, path: str, call: Call, elapsed: float, response_bytes: int,
               request_bytes: int, response: bytes | None = None) -> None:
        """The access log line and the journal entry of one answer; texts clipped once, here."""
        shown_path = observability.clip(path) or ""
        identifier = observability.clip(call.identifier)
        if not access_log.disabled:
            access_log.info(
                "%s %s sdkappid=%s identifier=%s code=%d bytes=%d ms=%.2f", method,
                shown_path, call.sdkappid, identifier, call.code, response_bytes,
                elapsed * 1000, extra={"fields": {
                    "method": method, "path": shown_path, "command": call.command,
                    "sdkappid": call.sdkappid, "identifier": identifier, "code": call.code,
                    "bytes": response_bytes, "ms": round(elapsed * 1000, 3)}})
        # /v4 calls, and the console's actions that run a /v4 command (``Endpoint.journal_as``)
        if call.command in BY_NAME or call.command is None:
            bodies = None
            if self.journal.record_bodies:  # serve --record-bodies (never the query: no UserSig)
                bodies = (call.request_body, response,
                          BY_NAME[call.command].user_ids_of(call.request)
                          if call.request is not None and call.command is not None else [])
            self.journal.record(method, shown_path, call.command, call.sdkappid, identifier,
                                call.code, elapsed * 1000, request_bytes, response_bytes,
                                bodies=bodies)


async def _json_object(request: Request, call: Call, limit: int) -> dict[str, Any]:
    def keep(body: bytes) -> None:
        call.request_body = body
    return await read_json_object(request, limit, ENDPOINT_BODY_TIMEOUT, keep)


def _parsed(command: str, body: bytes) -> Any:
    """The request struct of a console action's body (for the UserIDs it names), or None."""
    try:
        return BY_NAME[command].parse(msgspec.json.decode(body))
    except Exception:  # a refused body names no UserID
        return None


def throttle_headers(call: Call) -> dict[str, str]:
    """On a 60007 (``serve --throttle-hints``): ``Retry-After`` (whole seconds, at least 1),
    ``X-RateLimit-Limit`` (calls per 1 s window), ``X-RateLimit-Remaining`` (0) and
    ``X-RateLimit-Reset`` (seconds until a call is accepted again, to the millisecond). The
    body stays exactly Tencent's; Tencent itself sends none of these."""
    decision = call.rate
    wait = decision.retry_after if decision is not None else 1.0
    headers = {"Retry-After": str(max(1, math.ceil(wait))),
               "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": f"{max(wait, 0.001):.3f}"}
    if decision is not None and decision.limit > 0:
        headers["X-RateLimit-Limit"] = str(decision.limit)
    return headers


def client_ip(scope: Any) -> str:
    """The peer's address (a proxy's, behind one: timserver trusts no forwarding header)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def url_path(scope: Any) -> str:
    """``request.url.path``; for a plain path (the commands' own at once), without parsing a
    whole URL (Starlette's URL keeps the path as it is when the scope has a server address)."""
    path: str = scope["path"]
    if path in _PLAIN_V4_PATHS or (scope.get("server") and _PLAIN_PATH.fullmatch(path)):
        return path
    return Request(scope).url.path


def _preflight(request: Request) -> Response:
    headers = dict(CORS_HEADERS)
    asked = request.headers.get("access-control-request-headers")
    if asked:  # let browsers send what they asked for (a JSON Content-Type, typically)
        headers["Access-Control-Allow-Headers"] = f"X-Requested-With, {asked}"[:1024]
    headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
    headers["Access-Control-Max-Age"] = "86400"
    return Response(b"", status_code=200, headers=headers)
