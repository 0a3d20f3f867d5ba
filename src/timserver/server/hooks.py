"""What a plugin may add to the request pipeline, declared in one place.

A plugin is an object with some of the hooks below; ``Plugin`` is the no-op default of each,
so a plugin overrides only what it uses and the pipeline calls only hooks that someone
overrides (a server without plugins runs the bare path). ``server/`` knows plugins only
through this module; the emulator and the web console are plugins, wired in by
``timserver.wiring``.

    setup(server)             once, before the first call: the plugin's handles on the server
    startup() / shutdown()    with the server's lifespan
    before_call(call)         every authenticated call (/v4 and admin endpoints), before the
                              caller is checked: refresh state, move the clock
    around_handler(call, next)
                              /v4 calls only, after every check (auth, rate limit, body),
                              around the command's handler: where faults are injected
    endpoints()               extension endpoints under /_timserver/, each answered through the
                              pipeline (access decision, envelope, exception table, log)
    routes(gates)             plain routes (pages, static files) behind an access gate

A hook may raise ``TimError`` (answered as is), ``BadInput`` (70402 with its message), or
``AbortConnection`` (the connection is closed without an answer).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from ..protocol.commands import Command
    from ..service.apps import AppDirectory
    from ..service.clock import Clock
    from ..service.presence import PresenceService
    from ..service.ratelimit import RateLimiter
    from ..storage import App, Storage
    from .access import ConsoleAccess
    from .journal import Journal


class BadInput(ValueError):
    """Input a plugin cannot accept; answered 70402 "Invalid parameters: <message>."."""


class AbortConnection(BaseException):  # a control-flow signal, like CancelledError
    """Close the connection without any answer (the emulator's dropped-connection fault).

    A ``BaseException``, so that no ``except Exception`` on the way turns it into 70500; the
    server's front catches it and aborts the socket (``server/transport.py``).
    """


class Access(enum.Enum):
    """Who may call an endpoint; the pipeline decides before the handler runs."""

    ADMIN = "admin"  # an app admin's UserSig in the query (sdkappid, identifier, usersig)
    SIGNED = "signed"  # any account's own valid UserSig of the app (the handler says who may)
    CONSOLE = "console"  # the console's gate: an allowed local address (else: an unknown path)
    CONSOLE_TOKEN = "console-token"  # noqa: S105 (a name, not a secret); the console's gate and its token (the server's secrets)


@dataclass
class Call:
    """One call on its way through the pipeline: what hooks may read (never the UserSig)."""

    command: str | None = None  # /v4: the command's name; an endpoint: its path
    sdkappid: int | None = None
    identifier: str | None = None
    client_ip: str = ""  # the caller's address (third-party callbacks' ClientIP)
    code: int = 0
    rate: Any = None  # with 60007: the limiter's Decision (throttle hints)
    body_bytes: int = -1  # bytes of the request body read (-1: not read)
    request_body: bytes | None = None  # /v4: the body as read (recorded with --record-bodies)
    request: Any = None  # /v4: the validated request struct
    #: /v4 calls on a server: returns when the client hangs up (after the body was read)
    disconnected: Callable[[], Awaitable[None]] | None = None


@dataclass
class ServerHandles:
    """What ``setup`` gives a plugin: the server's own objects, to use, not to replace."""

    storage: Storage
    clock: Clock
    limiter: RateLimiter
    apps: AppDirectory
    deadline: float
    authenticate: Callable[..., Awaitable[App]]
    check_rate: Callable[[App, Command], Awaitable[None]]
    run: Callable[[Command, App, Any], Awaitable[Any]]  # a command's handler under the deadline
    journal: Journal  # the answered /v4 calls (the console shows them)
    access: ConsoleAccess  # the console's gates
    presence: PresenceService  # login state: simulated logins, each account's devices
    callbacks: Any  # server.callbacks.CallbackSender: each app's latest deliveries


Serve = Callable[["Command", "App", Any], Awaitable[bytes]]


@dataclass
class EndpointCall:
    """What an endpoint handler gets: the request, the checked caller, the query."""

    request: Request
    params: dict[str, str]
    app: App | None  # with Access.ADMIN or SIGNED: the caller's app
    read_json: Callable[[int], Awaitable[dict[str, Any]]]  # the body as a JSON object, bounded
    identifier: str | None = None  # with Access.ADMIN or SIGNED: who signed

    async def json(self, limit: int = 64 * 1024) -> dict[str, Any]:
        return await self.read_json(limit)


EndpointHandler = Callable[[EndpointCall], Awaitable["dict[str, Any] | Response"]]


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one method of an endpoint (``server/openapi.py``).

    ``request``: the JSON body's struct; ``response``: the fields an OK answer adds to the
    envelope; ``query``: the query parameters beyond the caller's credentials (a struct whose
    fields are the parameters, optional when they have a default). msgspec structs, from which
    the schemas are generated. ``download``: a media type the method may answer instead of the
    envelope (the journal's NDJSON). ``resets``: the call changes how the app's later calls are
    answered (fault rules, the clock, a reset): tools that generate calls from the document
    (the schemathesis fuzz) leave it out; the document marks it ``x-timserver-resets``.
    """

    summary: str = ""
    description: str = ""
    request: type[Any] | None = None
    response: type[Any] | None = None
    query: type[Any] | None = None
    download: str | None = None
    resets: bool = False


@dataclass(frozen=True)
class Endpoint:
    """An extension endpoint: its path, a handler per method, who may call it.

    A handler returns the answer's fields (put in the OK envelope) or a ``Response`` of its own
    (a download). ``cors``: answer browsers' preflight requests (the admin endpoints do).

    Its OpenAPI: ``summary``, ``description``, ``request``, ``response``, ``query`` (see
    ``Operation``) for an endpoint of one method; ``docs`` one ``Operation`` per method where
    the methods differ (``GET`` lists, ``POST`` adds).
    """

    path: str
    handlers: Mapping[str, EndpointHandler]
    access: Access = Access.ADMIN
    cors: bool = False
    summary: str = ""
    #: the /v4 command this endpoint runs for the console (import, delete, kick): its answers
    #: go into the journal under that command's name, like the command's own calls
    journal_as: str | None = None
    description: str = ""
    request: type[Any] | None = None
    response: type[Any] | None = None
    query: type[Any] | None = None
    docs: Mapping[str, Operation] = field(default_factory=dict)
    #: in the OpenAPI document; False for a page's own endpoints (the console's, described in
    #: docs/console.md), which no client but the page calls
    listed: bool = True

    def operation(self, method: str) -> Operation:
        """The OpenAPI side of ``method``: its own ``docs`` entry, else the endpoint's."""
        return self.docs.get(method) or Operation(self.summary, self.description, self.request,
                                                  self.response, self.query)


class JournalEntry(msgspec.Struct, frozen=True):
    """One answered request, as the journal (``ServerHandles.journal``) gives it: what the
    journal endpoints, the emulator's ``/_timserver/calls`` and the NDJSON export show."""

    Id: str
    Seq: int
    Time: float  # Unix seconds, when the answer was sent
    Method: str
    Path: str
    Command: str | None
    SDKAppID: int | None
    Identifier: str | None
    ErrorCode: int
    LatencyMs: float
    RequestBytes: int
    ResponseBytes: int
    # with serve --record-bodies only (absent otherwise):
    UserIDs: list[str] | msgspec.UnsetType = msgspec.UNSET  # named by the request body
    RequestBody: str | msgspec.UnsetType = msgspec.UNSET  # cut at MAX_RECORDED_BODY bytes
    ResponseBody: str | msgspec.UnsetType = msgspec.UNSET


RouteHandler = Callable[["Request"], Awaitable["Response"]]


@dataclass(frozen=True)
class Gates:
    """What ``routes`` gets from the pipeline: ``guard(access, handler)`` lets in only the
    callers ``access`` allows (the others get ``unknown``), ``unknown`` answers like an unknown
    path (60009)."""

    guard: Callable[[Access, RouteHandler], RouteHandler]
    unknown: RouteHandler


@dataclass
class Plugin:
    """The no-op default of every hook; a plugin subclasses it and overrides what it uses."""

    name: str = "plugin"
    handles: ServerHandles | None = field(default=None, repr=False)

    def setup(self, server: ServerHandles) -> None:
        self.handles = server

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def before_call(self, call: Call) -> None:
        return None

    async def around_handler(self, call: Call, cmd: Command, app: App, request: Any,
                             serve: Serve) -> bytes:
        return await serve(cmd, app, request)

    def endpoints(self) -> Sequence[Endpoint]:
        return ()

    def routes(self, gates: Gates) -> Sequence[BaseRoute]:
        return ()


HOOKS = ("startup", "shutdown", "before_call", "around_handler")


def overrides(plugin: Plugin, hook: str) -> bool:
    """Whether ``plugin`` has its own ``hook`` (the pipeline skips the no-op defaults)."""
    return getattr(type(plugin), hook) is not getattr(Plugin, hook)
