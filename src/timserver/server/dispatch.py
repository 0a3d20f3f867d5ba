"""One /v4 call, checked in the order of docs/protocol.md §4: first failure wins.

    method → command → sdkappid → identifier/usersig → random/contenttype → UserSig → admin
           → rate limit → body → handler (under a deadline)

``Dispatcher.dispatch`` is that order, top to bottom. It returns the JSON bytes to send; the
ASGI layer (``asgi.py``) only moves bytes and headers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from .. import usersig
from ..protocol import messages
from ..protocol.commands import BY_PATH, Command
from ..protocol.errors import TimError
from ..service.accounts import AccountService
from ..service.apps import AppDirectory, rate_for
from ..service.clock import Clock
from ..service.ratelimit import Decision, RateLimiter, SlidingWindowLimiter
from ..storage import App, Storage, StorageError
from .bodies import decode_json

log = logging.getLogger("timserver.dispatch")

MAX_BODY_BYTES = 1024 * 1024  # docs/protocol.md §4 step 9
MAX_UINT32 = 4294967295
VERIFIED_SIGS = 4096  # UserSigs whose signature was checked, kept (about 2 MB at most)

BodyReader = Callable[[int], Awaitable[bytes]]
T = TypeVar("T")


@dataclass
class CallInfo:
    """What the access log and the journal learn about one call (never the UserSig)."""

    command: str | None = None
    sdkappid: int | None = None
    identifier: str | None = None
    code: int = 0
    rate: Decision | None = None  # with 60007: the limiter's decision (serve --throttle-hints)
    body_bytes: int = -1  # bytes of the request body read (-1: not read)


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
    #: The emulator's fault hook (``timserver.emulator.Emulator``), set by ``asgi.create_app``.
    faults: Any = None

    def __init__(self, storage: Storage, clock: Clock | None = None, *,
                 deadline: float = 3.0, body_timeout: float = 10.0,
                 limiter: RateLimiter | None = None) -> None:
        self.storage = storage
        self.clock = clock or Clock()
        self.apps = AppDirectory(storage)
        self.accounts = AccountService(storage, self.clock)
        self.limiter = limiter or SlidingWindowLimiter()
        self.deadline = deadline
        self.eager = runs_inline(storage)
        self._verified: dict[tuple[str, int, str, str], usersig.SigDocument] = {}
        self.body_timeout = body_timeout

    async def dispatch(self, method: str, service: str | None, command: str | None,
                       query: bytes, read_body: BodyReader, info: CallInfo) -> bytes:
        """The answer to one call, as JSON bytes; never raises."""
        try:
            return await self._dispatch(method, service, command, query, read_body, info)
        except TimError as err:
            info.code = err.code
            info.rate = getattr(err, "decision", None)  # RateLimited (or an injected 60007)
            return messages.encode(messages.ErrorResponse("FAIL", err.info, err.code))
        except Exception:
            log.exception("internal error in %s", info.command or "request")
            info.code = 70500
            return messages.encode(messages.ErrorResponse(
                "FAIL", "Internal server error: retry.", 70500))

    async def _dispatch(self, method: str, service: str | None, command: str | None,
                        query: bytes, read_body: BodyReader, info: CallInfo) -> bytes:
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
        try:  # steps 3-7 read the database too: the same deadline and failure codes apply
            app = await within(self.deadline, self.authenticate(parse_query(query), info),
                               eager=self.eager)
        except TimeoutError:
            raise TimError(70169, "Server timeout: the caller could not be authenticated within "
                                  f"{self.deadline:g} s (the database is slow); retry.") from None
        except StorageError as err:
            log.warning("storage failed while authenticating a %s call: %s", cmd.name, err,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            raise TimError(70500, "Internal server error: the database is unreachable; "
                                  "retry.") from None
        # 8. Rate limit.
        await self.check_rate(app, cmd)
        # 9. The body.
        body = await self._read(read_body)
        info.body_bytes = len(body)
        request = cmd.parse.from_json(body)  # a valid body, in one pass
        if request is None:  # else the rules one by one, with Tencent's codes
            request = cmd.parse(self._decode(body))
        # --- Emulator: fault injection (timserver.emulator, docs/emulator.md) -----------------
        # After auth, rate limit and body validation, just before the handler: where Tencent's
        # backend itself would fail. A rule may answer an ErrorCode, add latency, drop the
        # connection (DropConnection, a BaseException, passes the catch-all above) or fail
        # items of a batch; without rules for the app it calls ``_serve`` at once.
        if self.faults is not None:
            return await self.faults.serve(cmd, app, request, self._serve)
        # ---------------------------------------------------------------------------------------
        return await self._serve(cmd, app, request)

    async def authenticate(self, params: dict[str, str], info: CallInfo, *,
                           require_random: bool = True) -> App:
        """Steps 3 to 7 of docs/protocol.md §4: the app, the caller, the UserSig, admin rights.

        Also the gate of the extension endpoints under ``/_timserver/`` (with
        ``require_random=False``: they need no ``random`` nor ``contenttype``).
        """
        # 3. The app.
        app = await self._app(params.get("sdkappid", ""), info)
        # 4. Who calls.
        identifier, sig = params.get("identifier", ""), params.get("usersig")
        if not identifier or sig is None:
            missing = "identifier" if not identifier else "usersig"
            raise TimError(60004, f"The {missing} query parameter is missing or empty: set "
                                  "identifier to an app admin and usersig to its UserSig.")
        info.identifier = identifier
        if sig == "":
            raise TimError(70002, "The usersig query parameter is empty: pass the admin's "
                                  "UserSig.")
        # 5. random and contenttype.
        if require_random:
            random = params.get("random")
            if random is None or not _is_digits(random) or int(random) > MAX_UINT32:
                raise TimError(60002, "HTTP parse error: random must be a decimal integer from 0 "
                                      "to 4294967295.")
            if params.get("contenttype") != "json":
                raise TimError(60002, "HTTP parse error: contenttype must be exactly json.")
        # 6. The UserSig.
        try:
            doc = self._verify(sig, app, identifier, int(self.clock.now(app.sdkappid)))
            usersig.check_not_kicked(doc, await self.storage.kicked_at(app.sdkappid, identifier))
        except usersig.SigError as err:
            raise TimError(err.code, err.reason) from None
        # 7. Admins only.
        if identifier not in app.admins:
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

    async def _app(self, raw: str, info: CallInfo) -> App:
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
            reading = _Started(reading, pending)
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
        handler = getattr(self.accounts, cmd.handler)
        try:
            return await within(self.deadline, handler(app, request), eager=self.eager)
        except TimeoutError:
            raise TimError(70169, f"Server timeout: {cmd.name} could not be served within "
                                  f"{self.deadline:g} s; retry.") from None
        except StorageError as err:
            # One line per failed call: during an outage a traceback each would flood the log.
            log.warning("storage failed during %s: %s", cmd.name, err,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            raise TimError(70500, "Internal server error: the database failed and nothing of "
                                  "this call was applied; retry.") from None


def runs_inline(storage: Any) -> bool:
    """Whether ``within(..., eager=True)`` is safe for work on ``storage`` (``Storage.runs_inline``)."""
    return getattr(storage, "runs_inline", False) is True


async def within(seconds: float, work: Coroutine[Any, Any, T], *, eager: bool = False) -> T:
    """``work``'s result, or TimeoutError after ``seconds``, whatever ``work`` is doing then.

    ``asyncio.timeout`` would cancel ``work`` and then wait for its clean-up, and a database
    driver's clean-up (returning a connection to its pool over a stalled network) can take far
    longer than the deadline. So ``work`` runs as its own task, and at the deadline the caller is
    answered while the task finishes, or fails, on its own. A write that completes after its
    deadline is harmless: the caller was told 70169 (retry), and every write is idempotent.

    With ``eager``, ``work`` starts inline and becomes a task only when it first waits: what
    never waits (an inline SQLite read) costs no task and no turns of the event loop, and could
    not have been interrupted anyway. Only for work that uses nothing bound to the current task
    before its first wait (``asyncio.timeout``, which a database driver may enter, is): that
    part runs in the caller's task, the rest in another. ``Storage.runs_inline`` says so.
    """
    if eager:
        try:
            pending = work.send(None)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]
        task = asyncio.ensure_future(_go_on(work, pending))
    else:
        task = asyncio.ensure_future(work)
    # asyncio.wait((task,), timeout=seconds), with less machinery: one waiter, one timer.
    waiter = task.get_loop().create_future()
    wake = functools.partial(_wake, waiter)
    timer = task.get_loop().call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    if not task.done():
        task.add_done_callback(_forget)
        raise TimeoutError
    return task.result()


def _wake(waiter: asyncio.Future[None], *_: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _go_on(work: Coroutine[Any, Any, T], pending: Any) -> T:
    return await _Started(work, pending)


class _Started:
    """Awaiting it drives a coroutine that was started by hand and is waiting for ``pending``
    (what its first ``send`` yielded), exactly as a task would have gone on driving it."""

    def __init__(self, work: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.work, self.pending = work, pending

    def __await__(self) -> Any:
        work, pending = self.work, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancelled or closed: pass it on to the coroutine
                step, arg = work.throw, exc
            else:
                step, arg = work.send, sent
            try:
                pending = step(arg)
            except StopIteration as finished:
                return finished.value


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a call's work failed after its deadline: %r", task.exception())


class RateLimited(TimError):
    """60007, carrying the limiter's decision (for optional throttle-hint headers)."""

    def __init__(self, command: str, decision: Decision) -> None:
        self.decision = decision
        super().__init__(60007, f"REST API call frequency over the limit: {command} accepts "
                                f"{decision.limit} calls per second for this app; slow down "
                                "and retry.")

