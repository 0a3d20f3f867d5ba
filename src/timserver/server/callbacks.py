"""Third-party callbacks: the events of the services, delivered to each app's receiver
(docs/protocol.md §11.3).

    service ──emit(app, event)──▶ bounded queue, one per shard ──▶ worker ──POST──▶ receiver
                                                                       └──▶ deliveries log

* ``emit`` never waits and never fails: an app without a callback URL, or that did not switch
  the event's command on, costs a dict lookup; a full queue drops the event, counts it in
  ``timserver_callbacks_total{outcome="dropped"}`` and logs one line.
* Events of one UserID go to one shard (of ``SHARDS``), whose worker sends them one at a time:
  a UserID's callbacks arrive in the order of the calls that caused them, while a slow receiver
  holds up only its shard, and never an API answer.
* A delivery waits at most ``TIMEOUT`` (2 s) for the receiver; a non-200, a body that is not JSON
  or no answer in time is a failed delivery, not retried (Tencent's after-event callbacks).
* The last ``KEPT`` deliveries of each app, in this process, are kept for the console and for
  ``GET /_timserver/callbacks`` (signed by an admin of the app): the URL without its Sign, the
  body, the status, the receiver's answer, the latency, the error.

The instance that served the call sends the callback: once, whatever the number of instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import zlib
from collections import deque
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import msgspec
from prometheus_client import Counter, Gauge

from ..service.events import Event
from ..storage import App, Callback
from .hooks import Endpoint, EndpointCall, Plugin

log = logging.getLogger("timserver.callbacks")

TIMEOUT = 2.0
SHARDS = 8
QUEUE_LIMIT = 10_000  # events waiting, all shards together
KEPT = 200  # deliveries kept per app
MAX_ANSWER_CHARS = 2000  # of a receiver's answer, kept
MAX_ANSWER_BYTES = 64 * 1024  # of a receiver's answer, read

DELIVERIES = Counter("timserver_callbacks_total",
                     "Third-party callbacks, by command and outcome (delivered, failed, dropped).",
                     ["command", "outcome"])
WAITING = Gauge("timserver_callbacks_waiting", "Callbacks queued and not yet sent.",
                multiprocess_mode="livesum")


def sign(token: str, request_time: int) -> str:
    """``Sign``: lowercase hex SHA-256 of the token followed by the time in decimal."""
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def callback_query(sdkappid: int, event: Event, callback: Callback,
                   request_time: int | None) -> list[tuple[str, str]]:
    """The query parameters of a delivery, in Tencent's order; without ``Sign`` and
    ``RequestTime`` when ``request_time`` is None (the URL as the deliveries log shows it)."""
    params = [("SdkAppid", str(sdkappid)), ("CallbackCommand", event.command),
              ("contenttype", "json"), ("ClientIP", event.client_ip),
              ("OptPlatform", event.platform)]
    if callback.token and request_time is not None:
        params += [("Sign", sign(callback.token, request_time)),
                   ("RequestTime", str(request_time))]
    return params


def with_query(url: str, params: list[tuple[str, str]]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class Delivery(msgspec.Struct, kw_only=True):
    """One delivery, as the console and ``GET /_timserver/callbacks`` show it."""

    Id: int
    Time: float  # Unix seconds, when the event happened
    CallbackCommand: str
    UserID: str
    Url: str  # without Sign and RequestTime (made when it is sent)
    Body: str
    Status: int | None = None  # the receiver's HTTP status; None: no answer
    Answer: str = ""  # the receiver's body, cut
    LatencyMs: float | None = None
    Outcome: str = "queued"  # queued, delivered, failed
    Error: str = ""


class CallbackSender(Plugin):
    """The server's ``EventSink``; a plugin only for its lifespan and its endpoint."""

    def __init__(self, *, timeout: float = TIMEOUT, queue_limit: int = QUEUE_LIMIT) -> None:
        super().__init__(name="callbacks")
        self.timeout = timeout
        self.queue_limit = queue_limit
        self._queues: list[asyncio.Queue[tuple[int, Callback, Event, Delivery]]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._waiting = 0
        self._seq = 0
        self._kept: dict[int, deque[Delivery]] = {}

    # --- the sink -------------------------------------------------------------------------------
    def emit(self, app: App, event: Event) -> None:
        callback = app.callback
        if callback is None or event.command not in callback.commands:
            return
        if self._waiting >= self.queue_limit:
            DELIVERIES.labels(event.command, "dropped").inc()
            log.warning("callback queue full (%d waiting): a %s event of app %d was dropped",
                        self._waiting, event.command, app.sdkappid)
            return
        if not self._workers:
            self._start()
        self._seq += 1
        body = json.dumps(event.body, ensure_ascii=False, separators=(",", ":"))
        shown = with_query(callback.url, callback_query(app.sdkappid, event, callback, None))
        delivery = Delivery(Id=self._seq, Time=time.time(), CallbackCommand=event.command,
                            UserID=event.user_id, Url=shown, Body=body)
        self._keep(app.sdkappid, delivery)
        shard = zlib.crc32(f"{app.sdkappid}/{event.user_id}".encode()) % SHARDS
        self._waiting += 1
        WAITING.inc()
        self._queues[shard].put_nowait((app.sdkappid, callback, event, delivery))

    def deliveries(self, sdkappid: int, limit: int = KEPT) -> list[Delivery]:
        """The app's latest deliveries in this process, newest first."""
        kept = self._kept.get(sdkappid, ())
        return list(reversed(kept))[:limit]

    def clear(self, sdkappid: int) -> int:
        return len(self._kept.pop(sdkappid, ()))

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return not self._waiting

    # --- lifespan -------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        await self.drain(self.timeout + 1)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        self._queues = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, trust_env=False,
                                         follow_redirects=False)
        self._queues = [asyncio.Queue() for _ in range(SHARDS)]
        self._workers = [asyncio.create_task(self._work(q), name=f"timserver-callbacks-{i}")
                         for i, q in enumerate(self._queues)]

    async def _work(self, queue: asyncio.Queue[tuple[int, Callback, Event, Delivery]]) -> None:
        while True:
            sdkappid, callback, event, delivery = await queue.get()
            try:
                await self._deliver(sdkappid, callback, event, delivery)
            except Exception:  # never lose the worker
                log.exception("callback delivery failed unexpectedly")
            finally:
                self._waiting -= 1
                WAITING.dec()

    async def _deliver(self, sdkappid: int, callback: Callback, event: Event,
                       delivery: Delivery) -> None:
        assert self._client is not None
        request_time = int(time.time())
        url = with_query(callback.url, callback_query(sdkappid, event, callback, request_time))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):  # the whole exchange, body included
                async with self._client.stream(
                        "POST", url, content=delivery.Body.encode(),
                        headers={"Content-Type": "application/json; charset=utf-8"}) as answer:
                    body = await _read_some(answer, MAX_ANSWER_BYTES)
        except (httpx.TimeoutException, TimeoutError):
            delivery.Error = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            delivery.Error = f"{type(exc).__name__}: {exc}"[:200]
        else:
            delivery.Status = answer.status_code
            delivery.Answer = body.decode("utf-8", "replace")[:MAX_ANSWER_CHARS]
            delivery.Error = _answer_problem(answer.status_code, body)
        delivery.LatencyMs = round((time.perf_counter() - started) * 1000, 3)
        delivery.Outcome = "failed" if delivery.Error else "delivered"
        DELIVERIES.labels(event.command, delivery.Outcome).inc()
        if delivery.Error:
            log.info("callback %s of app %d failed: %s", event.command, sdkappid, delivery.Error)

    def _keep(self, sdkappid: int, delivery: Delivery) -> None:
        kept = self._kept.get(sdkappid)
        if kept is None:
            kept = self._kept[sdkappid] = deque(maxlen=KEPT)
        kept.append(delivery)

    # --- the endpoint ---------------------------------------------------------------------------
    def endpoints(self) -> list[Endpoint]:
        async def listing(call: EndpointCall) -> dict[str, Any]:
            assert call.app is not None
            found = self.deliveries(call.app.sdkappid)
            callback = call.app.callback
            return {"Callback": _config(callback), "Count": len(found),
                    "Deliveries": msgspec.to_builtins(found)}

        async def clear(call: EndpointCall) -> dict[str, Any]:
            assert call.app is not None
            return {"Cleared": self.clear(call.app.sdkappid)}

        return [
            Endpoint("/_timserver/callbacks", {"GET": listing}, cors=True,
                     summary="The app's callback configuration and latest deliveries",
                     response=Deliveries,
                     description=f"The last {KEPT} deliveries of the app in this process, "
                                 "oldest first; the URL without its Sign."),
            Endpoint("/_timserver/callbacks/clear", {"POST": clear}, cors=True,
                     summary="Forget the app's recorded deliveries", request=ClearIn,
                     response=Cleared),
        ]


class CallbackConfig(msgspec.Struct, kw_only=True):
    Url: str
    Token: Annotated[bool, msgspec.Meta(description="Whether a token is set (never shown).")]
    Commands: list[str]


class Deliveries(msgspec.Struct, kw_only=True):
    """``GET /_timserver/callbacks`` (its OpenAPI)."""

    Callback: CallbackConfig | None
    Count: int
    Deliveries: list[Delivery]


class ClearIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``{}``."""


class Cleared(msgspec.Struct, kw_only=True):
    Cleared: int


def _config(callback: Callback | None) -> dict[str, Any] | None:
    """The app's callback configuration as shown: the token is a secret, never shown."""
    if callback is None:
        return None
    return {"Url": callback.url, "Token": bool(callback.token),
            "Commands": list(callback.commands)}


async def _read_some(answer: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of an answer's body: a receiver cannot make the server hold
    more than that (the rest is not read; the connection is then closed, not reused)."""
    chunks, size = [], 0
    async for chunk in answer.aiter_bytes():
        chunks.append(chunk[:limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)


def _answer_problem(status: int, body: bytes) -> str:
    """Why an answer is a failed delivery ("" when it is not)."""
    if status != 200:
        return f"HTTP {status}"
    try:
        json.loads(body)
    except ValueError:
        return "the answer is not JSON" + (" (or longer than 64 KiB)"
                                            if len(body) >= MAX_ANSWER_BYTES else "")
    return ""
