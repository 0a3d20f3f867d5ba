"""What the sync and the async client share: configuration, and every step of a call that does
no I/O (encode the body, build the URL, read the answer, decide whether and when to retry).

``sync.py`` and ``aio.py`` only add the I/O: the HTTP round trip and the waits.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import typing
from collections import Counter
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from msgspec import Struct

from .. import __version__
from ..protocol.commands import BY_NAME, Command
from ._exceptions import ApiError, NetworkError, TimClientError
from ._pacing import DEFAULT_HEADROOM, Pacer
from ._retry import RESIGN_CODES, RETRYABLE_HTTP_STATUSES, Retry, throttle_hints
from ._signing import DEFAULT_TTL, Signer
from .regions import base_url

log = logging.getLogger("timserver.client")

DEFAULT_TIMEOUT = 10.0  # the server's own deadline is 3 s (docs/protocol.md §8.2): wait longer than that
DEFAULT_CONCURRENCY = 16  # batches in flight at once in the bulk helpers
USER_AGENT = f"timserver-client/{__version__}"
HEADERS = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}

#: The environment variables of :meth:`from_env` (and of the ``timserver accounts`` CLI).
ENV_VARS = {"endpoint": "TIMSERVER_ENDPOINT", "sdkappid": "TIMSERVER_SDKAPPID",
            "key": "TIMSERVER_KEY", "admin": "TIMSERVER_ADMIN"}
DEFAULT_ADMIN = "administrator"
RATE_LIMITED = 60007  # the one code that may carry throttle hints


class _Envelope(Struct):
    ActionStatus: str = ""
    ErrorCode: int = 0
    ErrorInfo: str = ""


_envelope = msgspec.json.Decoder(_Envelope)


class Stats:
    """Counters of one client: HTTP requests sent, retries and why (an ErrorCode or ``network``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.retried: Counter[int | str] = Counter()
        self.hinted = 0  # 60007 answers that carried throttle hints (Retry-After, X-RateLimit-*)

    def sent(self) -> None:
        with self._lock:
            self.requests += 1

    def retrying(self, reason: int | str) -> None:
        with self._lock:
            self.retries += 1
            self.retried[reason] += 1

    def hint(self) -> None:
        with self._lock:
            self.hinted += 1

    def __repr__(self) -> str:
        return f"Stats(requests={self.requests}, retries={self.retries}, retried={dict(self.retried)})"


def _decoder(cmd: Command[Any, Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cmd.response)


class BaseClient:
    """Configuration and the I/O-free steps of a call. Use :class:`Client` or :class:`AsyncClient`."""

    def __init__(self, sdkappid: int, key: str, admin: str, endpoint: str, *,
                 rates: Mapping[str, float] | None = None, headroom: float = DEFAULT_HEADROOM,
                 retry: Retry | None = None, timeout: float = DEFAULT_TIMEOUT,
                 concurrency: int = DEFAULT_CONCURRENCY, sig_ttl: int = DEFAULT_TTL) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        unknown = set(rates or ()) - set(BY_NAME)
        if unknown:
            raise ValueError(f"rates for unknown commands: {', '.join(sorted(unknown))}")
        self.sdkappid = int(sdkappid)
        self.admin = admin
        self.base_url = base_url(endpoint)
        self.signer = Signer(self.sdkappid, key, admin, ttl=sig_ttl)
        self.pacer = Pacer(rates, headroom=headroom)
        self.retry = retry if retry is not None else Retry()
        self.timeout = timeout
        self.concurrency = concurrency
        self.stats = Stats()
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}

    @classmethod
    def from_env(cls, **options: Any) -> typing.Self:
        """Made from ``TIMSERVER_ENDPOINT``, ``TIMSERVER_SDKAPPID``, ``TIMSERVER_KEY`` and
        ``TIMSERVER_ADMIN`` (default ``administrator``); ``options`` go to the constructor."""
        missing = [v for n, v in ENV_VARS.items() if n != "admin" and not os.environ.get(v)]
        if missing:
            raise ValueError(f"set {', '.join(missing)}")
        return cls(int(os.environ[ENV_VARS["sdkappid"]]), os.environ[ENV_VARS["key"]],
                   os.environ.get(ENV_VARS["admin"]) or DEFAULT_ADMIN,
                   os.environ[ENV_VARS["endpoint"]], **options)

    def __repr__(self) -> str:  # never the key, never a UserSig
        return (f"{type(self).__name__}(sdkappid={self.sdkappid}, admin={self.admin!r}, "
                f"endpoint={self.base_url!r})")

    # --- the I/O-free steps of a call -----------------------------------------------------------

    @staticmethod
    def _command(command: Command[Any, Any] | str) -> Command[Any, Any]:
        if isinstance(command, Command):
            return command
        try:
            return BY_NAME[command]
        except KeyError:
            raise ValueError(f"unknown command {command!r}: one of {', '.join(BY_NAME)}") from None

    @staticmethod
    def _encode(cmd: Command[Any, Any], request: Any, fields: Mapping[str, Any]) -> bytes:
        """The JSON body: a request struct as it is, a mapping or keywords checked against it."""
        if request is not None and fields:
            raise TypeError(f"{cmd.name}: pass a request or keyword fields, not both")
        if isinstance(request, Struct):
            if not isinstance(request, cmd.request):
                raise TypeError(f"{cmd.name} takes a {cmd.request.__name__}, "
                                f"not a {type(request).__name__}")
            return msgspec.json.encode(request)
        data = request if request is not None else fields
        try:
            return msgspec.json.encode(msgspec.convert(data, cmd.request))
        except msgspec.ValidationError as exc:
            raise TypeError(f"{cmd.name}: invalid request: {exc}") from None

    def _url(self, cmd: Command[Any, Any], sig: str) -> str:
        # Built as Tencent's own clients build it (docs/protocol.md §2.1); the UserSig alphabet is URL-safe.
        return (f"{self.base_url}{cmd.path}?sdkappid={self.sdkappid}"
                f"&identifier={quote(self.admin, safe='')}&usersig={sig}"
                f"&random={secrets.randbits(32)}&contenttype=json")

    def _read(self, cmd: Command[Any, Any], response: httpx.Response) -> Any:
        """The typed answer, or raise :class:`ApiError` / :class:`NetworkError`."""
        status = response.status_code
        if status != 200:
            raise NetworkError(f"HTTP {status} {response.reason_phrase}".rstrip(), command=cmd.name,
                               status_code=status, retryable=status in RETRYABLE_HTTP_STATUSES)
        content = response.content
        try:
            envelope = _envelope.decode(content)
        except msgspec.DecodeError:
            raise NetworkError("the answer is not a JSON envelope (ActionStatus, ErrorCode, "
                               "ErrorInfo)", command=cmd.name, status_code=status,
                               retryable=False) from None
        if envelope.ErrorCode != 0 or envelope.ActionStatus != "OK":
            retry_after = limit = None
            if envelope.ErrorCode == RATE_LIMITED:
                retry_after, limit = throttle_hints(response.headers)
            raise ApiError(envelope.ErrorCode, envelope.ErrorInfo, command=cmd.name,
                           retry_after=retry_after, rate_limit=limit)
        decoder = self._decoders.get(cmd.name)
        if decoder is None:
            decoder = self._decoders[cmd.name] = _decoder(cmd)
        try:
            return decoder.decode(content)
        except msgspec.ValidationError:
            return _lenient(cmd, content)

    def _flow(self, cmd: Command[Any, Any]) -> Generator[float | str, Any, Any]:
        """The one retry loop of ``call``, for both clients, as httpx drives its auth flows:
        yields a float (seconds to sleep) or a str (the URL to POST ``body`` to, then is sent
        the ``httpx.Response`` or thrown what the POST raised) and returns the answer."""
        attempt, resigned = 0, False
        while True:
            attempt += 1
            while True:
                epoch = self.pacer.epoch(cmd.name)
                wait = max(self.pacer.reserve(cmd.name), self.signer.ready_in())
                if wait > 0:
                    yield wait
                if self.pacer.epoch(cmd.name) == epoch:
                    break  # else a throttle hint came meanwhile: take a slot of the new pace
            while (wait := self.pacer.admit(cmd.name)) > 0:
                yield wait
            sig = self.signer.current()
            self.stats.sent()
            failure: TimClientError
            try:
                try:
                    response = yield self._url(cmd, sig)
                finally:
                    self.pacer.done(cmd.name)  # counted from its answer (client/_pacing.py)
                return self._read(cmd, response)
            except (ApiError, NetworkError) as exc:
                failure = exc
            except httpx.RequestError as exc:
                failure = NetworkError(f"{type(exc).__name__}: {exc}", command=cmd.name,
                                       retryable=isinstance(exc, httpx.TransportError))
                failure.__cause__ = exc
            wait, now_resigned = self._plan_retry(cmd, failure, attempt, sig, resigned)
            if now_resigned and not resigned:
                attempt -= 1
                resigned = True
            if wait > 0:
                yield wait

    def _plan_retry(self, cmd: Command[Any, Any], failure: TimClientError, attempt: int,
                    sig: str, resigned: bool) -> tuple[float, bool]:
        """After try ``attempt`` failed: (seconds to wait, re-signed) — or raise ``failure``."""
        if isinstance(failure, ApiError) and failure.code in RESIGN_CODES and not resigned:
            # A new UserSig cures these; that try does not count against the retry budget.
            self.signer.renew(sig)
            self.stats.retrying(failure.code)
            log.info("%s: ErrorCode %d, signing a new UserSig", cmd.name, failure.code)
            return 0.0, True
        reason: int | str
        hinted = None
        if isinstance(failure, ApiError):
            retryable, reason = failure.code in self.retry.codes, failure.code
            if failure.retry_after is not None:
                # Throttle hints: the server said how long; the pacer makes every call of the
                # command wait that long (bounded like the backoff), then paces to its limit.
                hinted = min(failure.retry_after, self.retry.max_backoff)
                self.pacer.throttled(cmd.name, hinted, failure.rate_limit)
                self.stats.hint()
        else:
            assert isinstance(failure, NetworkError)
            retryable, reason = failure.retryable, "network"
        if not retryable or attempt >= self.retry.attempts:
            failure.attempts = attempt
            raise failure
        # With hints, the wait is the pacer's (the next slot is after the hold), not a backoff.
        wait = self.retry.delay(attempt) if hinted is None else 0.0
        self.stats.retrying(reason)
        log.info("%s: %s; retry %d of %d in %.2f s", cmd.name, failure, attempt,
                 self.retry.attempts - 1, wait if hinted is None else hinted)
        return wait, resigned


def _lenient(cmd: Command[Any, Any], content: bytes) -> Any:
    """Accept an OK answer that omits a result array (Tencent may leave out an empty
    ``FailAccounts``, docs/protocol.md §7.2): a missing required list is an empty list."""
    data = msgspec.json.decode(content)
    if isinstance(data, dict):
        for f in msgspec.structs.fields(cmd.response):
            if f.required and f.encode_name not in data and typing.get_origin(f.type) is list:
                data[f.encode_name] = []
    try:
        return msgspec.convert(data, cmd.response)
    except msgspec.ValidationError as exc:
        raise NetworkError(f"the answer does not match {cmd.response.__name__}: {exc}",
                           command=cmd.name, status_code=200, retryable=False) from None
