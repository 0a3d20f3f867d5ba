"""One /v4 call, checked in the order of docs/protocol.md §4: first failure wins.

    method → command → sdkappid → identifier/usersig → random/contenttype → UserSig → admin
           → rate limit → body → handler (under a deadline)

``Dispatcher.dispatch`` is that order, top to bottom. It returns the JSON bytes to send; the
ASGI layer (``asgi.py``) only moves bytes and headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from .. import usersig
from ..deadline import Started, within
from ..protocol import messages
from ..protocol.commands import BY_NAME, BY_PATH, COMMANDS, MAX_UINT32, Command
from ..protocol.errors import TimError
from ..service.accounts import AccountService
from ..service.apps import AppDirectory, rate_for
from ..service.clock import Clock
from ..service.events import ORIGIN, EventSink, Origin
from ..service.presence import PresenceService
from ..service.profiles import ProfileService
from ..service.ratelimit import Decision, RateLimiter, SlidingWindowLimiter
from ..storage import App, Storage
from .bodies import decode_json
from .envelope import as_failure, fail
from .hooks import Call, Plugin, Serve, overrides

log = logging.getLogger("timserver.dispatch")

MAX_BODY_BYTES = 1024 * 1024  # docs/protocol.md §4 step 9
MAX_IDENTIFIER_BYTES = 256  # no admin is longer than a UserID (32 bytes); refused before recording
VERIFIED_SIGS = 4096  # UserSigs whose signature was checked, kept (about 2 MB at most)

BodyReader = Callable[[int], Awaitable[bytes]]
Around = Callable[[Call, Command, App, Any, Serve], Awaitable[bytes]]
Before = Callable[[Call], Awaitable[None]]


def parse_query(raw: bytes) -> dict[str, str]:
    """Query parameters, names and values case-sensitive; the first occurrence wins.

    Percent-escapes are decoded but ``+`` stays ``+`` (clients build these URLs by string
    formatting; a UserSig never contains ``+``). Bytes that are not UTF-8 survive as surrogate
    escapes, so they can never equal a real identifier or digit string.
    """
    params: dict[str, str] = {}
    if b"%" not in raw:  # nothing to unquote (the usual query): split the decoded text
        for part in raw.decode("utf-8", "surrogateescape").split("&"):
            if part:
                name, _, value = part.partition("=")
                params.setdefault(name, value)
        return params
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = unquote_to_bytes(name).decode("utf-8", "surrogateescape")
        if key not in params:
            params[key] = unquote_to_bytes(value).decode("utf-8", "surrogateescape")
    return params


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Dispatcher:
    """The checks of one /v4 call in their order, and the command's handler under a deadline.

    Plugins take part through two hooks (``server/hooks.py``): ``before_call`` at the start of
    every call, ``around_handler`` around the handler; without plugins neither costs anything.
    """

    def __init__(self, storage: Storage, clock: Clock | None = None, *,
                 deadline: float = 3.0, body_timeout: float = 10.0,
                 limiter: RateLimiter | None = None, plugins: Sequence[Plugin] = (),
                 events: EventSink | None = None) -> None:
        self.storage = storage
        self.clock = clock or Clock()
        self.apps = AppDirectory(storage)
        self.presence = PresenceService(storage, self.clock, events)
        self.accounts = AccountService(storage, self.clock, self.presence)
        self.profiles = ProfileService(storage, self.clock, events)
        # Each command's handler, found once: the method its declaration names on the object
        # serving its service.
        serving = {"im_open_login_svc": self.accounts, "openim": self.presence,
                   "profile": self.profiles}
        self.handlers: dict[str, Callable[[App, Any], Awaitable[Any]]] = {
            cmd.name: getattr(serving[cmd.service], cmd.handler) for cmd in COMMANDS}
        self.limiter = limiter or SlidingWindowLimiter()
        self.deadline = deadline
        self.eager = storage.capabilities.runs_inline
        self._verified: dict[tuple[str, int, str, str], usersig.SigDocument] = {}
        self.body_timeout = body_timeout
        self.before: tuple[Before, ...] = tuple(
            p.before_call for p in plugins if overrides(p, "before_call"))
        self.around: Around | None = _nest([p.around_handler for p in plugins
                                            if overrides(p, "around_handler")])

    async def dispatch(self, method: str, service: str | None, command: str | None,
                       query: bytes, read_body: BodyReader, info: Call) -> bytes:
        """The answer to one call, as JSON bytes; never raises (but ``AbortConnection``)."""
        try:
            for hook in self.before:
                await hook(info)
            return await self._dispatch(method, service, command, query, read_body, info)
        except Exception as exc:
            err = as_failure(exc, what=info.command or "request", deadline=self.deadline)
            info.code = err.code
            info.rate = getattr(err, "decision", None)  # RateLimited (or an injected 60007)
            extra = None
            if info.request_body is not None:  # the body or the handler failed: the command's
                cmd = BY_NAME.get(info.command or "")
                extra = cmd.fail_fields if cmd is not None else None
            return fail(err.code, err.info, extra)

    async def _dispatch(self, method: str, service: str | None, command: str | None,
                        query: bytes, read_body: BodyReader, info: Call) -> bytes:
        # 1. POST (or a GET carrying the body, as some clients send).
        if method not in ("POST", "GET"):
            raise TimError(60008, f"Malformed HTTP request: method {method} is not supported; "
                                  "call the REST API with POST.")
        # 2. The command.
        cmd = BY_PATH.get((service or "", command or ""))
        if cmd is None:
            raise TimError(60009, "Requested resource error: no such servicename/command "
                                  f"({service}/{command}); check the request URL.")
        info.command = cmd.name
        # 3-7. The app, the caller, the UserSig, admin rights.
        app = await self.authenticated(parse_query(query), info)
        # 8. Rate limit.
        await self.check_rate(app, cmd)
        # 9. The body.
        body = await self._read(read_body)
        info.body_bytes, info.request_body = len(body), body
        request = cmd.parse.from_json(body)  # a valid body, in one pass
        if request is None:  # else the rules one by one, with Tencent's codes
            try:
                request = cmd.parse(self._decode(body))
            except TimError as err:
                if cmd.body_codes is None:
                    raise
                raise cmd.body_codes.failure(err) from None  # the command's own codes
        info.request = request
        ORIGIN.set(Origin(info.identifier or "", info.client_ip))  # for the events it causes
        # 10. The handler; plugins around it (the emulator's faults: where Tencent's backend
        # itself would fail, after every check).
        if self.around is not None:
            return await self.around(info, cmd, app, request, self._serve)
        return await self._serve(cmd, app, request)

    async def authenticated(self, params: dict[str, str], info: Call, *,
                            require_random: bool = True, admin: bool = True) -> App:
        """``authenticate`` under the call's deadline: these steps read the database too."""
        try:
            return await within(self.deadline, self.authenticate(
                params, info, require_random=require_random, admin=admin), eager=self.eager)
        except TimError:
            raise
        except Exception as exc:
            raise as_failure(exc, what=info.command or "request", stage="auth",
                             deadline=self.deadline) from None

    async def authenticate(self, params: dict[str, str], info: Call, *,
                           require_random: bool = True, admin: bool = True) -> App:
        """Steps 3 to 7 of docs/protocol.md §4: the app, the caller, the UserSig, admin rights.

        Also the gate of the extension endpoints under ``/_timserver/`` (with
        ``require_random=False``: they need no ``random`` nor ``contenttype``; ``admin=False``:
        any account's own valid UserSig passes step 7, as Tencent's login would take it).
        """
        # 3. The app.
        app = await self._app(params.get("sdkappid", ""), info)
        # 4. Who calls.
        identifier, sig = params.get("identifier", ""), params.get("usersig")
        if not identifier or sig is None:
            missing = "identifier" if not identifier else "usersig"
            raise TimError(60004, f"The {missing} query parameter is missing or empty: set "
                                  "identifier to an app admin and usersig to its UserSig.")
        info.identifier = identifier  # recorded clipped (pipeline.record)
        if len(identifier) > MAX_IDENTIFIER_BYTES or len(identifier.encode(
                "utf-8", "surrogateescape")) > MAX_IDENTIFIER_BYTES:
            raise TimError(60004, f"The identifier query parameter is longer than "
                                  f"{MAX_IDENTIFIER_BYTES} bytes: set it to an app admin (a "
                                  "UserID of at most 32 bytes).")
        if sig == "":
            raise TimError(70002, "The usersig query parameter is empty: pass the admin's "
                                  "UserSig.")
        # 5. random and contenttype.
        if require_random:
            random = params.get("random")
            if random is None or not _is_digits(random) or int(random) > MAX_UINT32:
                raise TimError(60002, "HTTP parse error: random must be a decimal integer from 0 "
                                      f"to {MAX_UINT32}.")
            if params.get("contenttype") != "json":
                raise TimError(60002, "HTTP parse error: contenttype must be exactly json.")
        # 6. The UserSig.
        try:
            doc = self._verify(sig, app, identifier, int(self.clock.now(app.sdkappid)))
            usersig.check_not_kicked(doc, await self.storage.kicked_at(app.sdkappid, identifier))
        except usersig.SigError as err:
            raise TimError(err.code, err.reason) from None
        # 7. Admins only.
        if admin and identifier not in app.admins:
            raise TimError(70403, f"Request failed: {identifier!r} is not an admin of app "
                                  f"{app.sdkappid}; set identifier to an app admin.")
        return app

    def _verify(self, sig: str, app: App, identifier: str, now: int) -> usersig.SigDocument:
        """``usersig.verify``, its time-independent work (decoding, the HMAC) done once per
        (UserSig, app, key, identifier): clients send the same UserSig for its whole validity."""
        key = (sig, app.sdkappid, identifier, app.key)
        doc = self._verified.get(key)
        if doc is not None and now <= doc.expires_at:
            return doc
        doc = usersig.verify(sig, sdkappid=app.sdkappid, identifier=identifier, key=app.key,
                             now=now)  # raises SigError, with the code and reason, if refused
        if len(self._verified) >= VERIFIED_SIGS:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[key] = doc
        return doc

    async def _app(self, raw: str, info: Call) -> App:
        if raw == "":
            raise TimError(60012, "The REST API call must carry an SDKAppID: add sdkappid to "
                                  "the URL.")
        app = None
        if _is_digits(raw) and int(raw) <= MAX_UINT32:
            app = await self.apps.get(int(raw))
        if app is None:
            raise TimError(60006, f"SDKAppID {raw!r} is invalid: no such app on this server.")
        info.sdkappid = app.sdkappid
        return app

    async def _read(self, read_body: BodyReader) -> bytes:
        reading = read_body(MAX_BODY_BYTES)
        pending = None
        if asyncio.iscoroutine(reading):  # a body that is all there already needs no timer
            try:
                pending = reading.send(None)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            reading = Started(reading, pending)
        try:
            async with asyncio.timeout(self.body_timeout):
                return await reading
        except TimeoutError:
            raise TimError(60008, "Service timeout: the request body did not arrive in "
                                  f"{self.body_timeout:g} s.") from None

    @staticmethod
    def _decode(body: bytes) -> Any:
        return decode_json(body)

    async def check_rate(self, app: App, cmd: Command) -> None:
        """Step 8: count the call against (app, command), or 60007."""
        decision = await self.limiter.acquire((app.sdkappid, cmd.name), rate_for(app, cmd.name))
        if not decision.allowed:
            raise RateLimited(cmd.name, decision)

    async def _serve(self, cmd: Command, app: App, request: Any) -> bytes:
        return messages.encode(await self.run(cmd, app, request))

    async def run(self, cmd: Command, app: App, request: Any) -> Any:
        """The command's handler under the deadline: its response struct, or 70169 / 70500."""
        handler = self.handlers[cmd.name]
        try:
            return await within(self.deadline, handler(app, request), eager=self.eager)
        except TimError:
            raise
        except Exception as exc:
            raise as_failure(exc, what=cmd.name, deadline=self.deadline) from None


def _nest(arounds: list[Around]) -> Around | None:
    """One ``around_handler`` made of several: the first plugin's is the outermost."""
    if not arounds:
        return None
    inner, *outer = reversed(arounds)
    for hook in outer:
        inner = _wrap(hook, inner)
    return inner


def _wrap(hook: Around, inner: Around) -> Around:
    async def around(call: Call, cmd: Command, app: App, request: Any, serve: Serve) -> bytes:
        async def next_serve(c: Command, a: App, r: Any) -> bytes:
            return await inner(call, c, a, r, serve)
        return await hook(call, cmd, app, request, next_serve)
    return around


class RateLimited(TimError):
    """60007, carrying the limiter's decision (for optional throttle-hint headers)."""

    def __init__(self, command: str, decision: Decision) -> None:
        self.decision = decision
        super().__init__(60007, f"REST API call frequency over the limit: {command} accepts "
                                f"{decision.limit} calls per second for this app; slow down "
                                "and retry.")

