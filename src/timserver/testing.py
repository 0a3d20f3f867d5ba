"""A throwaway timserver for your tests: a real server process on a free loopback port, with a
temporary database and one app, reset between tests (docs/emulator.md).

With pytest, in your ``conftest.py``::

    pytest_plugins = ["timserver.testing"]

    def test_import(tim_server):          # one server for the session, reset before each test
        answer = tim_server.call("account_import", {"UserID": "alice"})
        assert answer["ErrorCode"] == 0

    def test_retries(tim_server):
        tim_server.add_fault(command="account_check", code=70169, times=2)
        ...                               # point your client at tim_server.base_url

``tim_server_session`` is the same server without the reset. Without pytest::

    from timserver.testing import start_server

    with start_server(args=["--throttle-hints"]) as server:
        print(server.base_url, server.sdkappid, server.key)

``ServeProcess(db, args)`` is the process alone (no app made: for a database a test prepared
itself), with ``output()``, ``restart()``, ``kill()`` (SIGKILL) and ``stop()``; ``TimServer``
is one with the helpers. ``CallbackReceiver`` records the third-party callbacks an app sends
and answers as told (OK, HTTP 500, not JSON, no answer).

Nothing here runs at import: the fixtures start a server only when a test asks for one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from . import usersig
from .emulator.state import MAX_CLOCK_OFFSET as _MAX_CLOCK_OFFSET

__all__ = ["CallbackReceiver", "ControlError", "ReceivedCallback", "ServeProcess", "TimServer",
           "free_port", "start_server", "stop_process"]

T = TypeVar("T")
COMMANDS = ("account_import", "multiaccount_import", "account_delete", "account_check", "kick")
_RULE_KEYS = {"command": "Command", "user_id": "UserID", "userid": "UserID", "code": "Code",
              "latency_ms": "LatencyMs", "drop": "Drop", "fail_items": "FailItems",
              "item_probability": "ItemProbability", "probability": "Probability",
              "times": "Times", "seed": "Seed"}


class ControlError(RuntimeError):
    """A control endpoint answered a failure; ``answer`` is its envelope."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(f"{answer.get('ErrorCode')}: {answer.get('ErrorInfo')}")
        self.answer = answer


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before you bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_free_port = free_port  # the name of earlier releases


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """End a child process: SIGTERM, then SIGKILL when it has not ended within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own (safe when the caller's thread runs an event loop)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class ServeProcess:
    """``timserver serve`` in a child process on a free loopback port, started at once and
    ready (``GET /healthz`` answers 200) when the constructor returns.

    ``args`` go to ``timserver serve`` after the options set here (a later option wins). Its
    output goes to ``log_path`` (in ``folder``; default a temporary folder, removed when the
    object is collected), emptied at the first start and appended to by restarts, never to a
    pipe: a pipe that nobody reads fills up (64 KiB) and then blocks the server on its next log
    line. ``env`` adds variables to the child's environment (a value ``None`` removes one);
    ``log_level`` ``None`` leaves the option out. A port taken between the probe and the bind
    is retried on another port.
    """

    def __init__(self, db: str, args: Sequence[str] = (), *, folder: str | Path | None = None,
                 log_name: str = "server.log", log_level: str | None = "warning",
                 access_log: bool = True, env: Mapping[str, str | None] | None = None,
                 cwd: str | Path | None = None, startup_timeout: float = 30.0,
                 stop_timeout: float = 10.0) -> None:
        self.db = db
        self.args = list(args)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="timserver-serve-")
            folder = self._tmp.name
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_path = self.folder / log_name
        self.log_level = log_level
        self.access_log = access_log
        self.env = dict(env or {})
        self.cwd = cwd
        self._startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base_url = ""
        self.starts = 0
        self.start()

    # --- life cycle ------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line of the next start (``self.port`` chosen)."""
        return [sys.executable, "-m", "timserver", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--db", self.db,
                *(["--log-level", self.log_level] if self.log_level else []),
                *([] if self.access_log else ["--no-access-log"]), *self.args]

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self) -> None:
        """Start the server (on a new free port) unless it runs; return when it is ready."""
        if self.alive():
            return
        for attempt in range(3):  # a free port may be taken between the probe and the bind
            self.port = free_port()
            self.base_url = f"http://127.0.0.1:{self.port}"
            with open(self.log_path, "ab" if self.starts else "wb") as log:  # a new log, then appended
                self._log_start = log.tell()
                self.process = subprocess.Popen(self.command(), stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.cwd,
                                                env=self._environment())
            self.starts += 1
            if self._wait_ready():
                return
            if attempt == 2 or "address already in use" not in self.output(since_start=True).lower():
                raise RuntimeError(f"timserver did not start; its output:\n{self.output()[-4000:]}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self._terminate()
        return False

    def _terminate(self) -> None:
        if self.process is not None:
            stop_process(self.process, self.stop_timeout)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The running (or last) child process."""
        assert self.process is not None
        return self.process

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL after ``stop_timeout``); all it wrote."""
        self._terminate()
        return self.output()

    def kill(self) -> None:
        """SIGKILL, by PID: no clean-up of any kind (a crash)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start the server again on the same database (a new port)."""
        self._terminate()
        self.start()

    def output(self, *, since_start: bool = False) -> str:
        """Everything the server has written (across restarts; since the last start only with
        ``since_start``)."""
        try:
            with open(self.log_path, "rb") as log:
                if since_start:
                    log.seek(self._log_start)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def logs(self) -> str:
        return self.output()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TimServer(ServeProcess):
    """A running timserver process and the app it hosts; the helpers speak HTTP to it."""

    def __init__(self, *, db: str, folder: Path, sdkappid: int, key: str, admin: str,
                 args: Sequence[str] = (), owns_folder: bool = False,
                 startup_timeout: float = 30.0, **options: Any) -> None:
        self.sdkappid = sdkappid
        self.key = key
        self.admin = admin
        self._owns_folder = owns_folder
        self.client = httpx.Client(timeout=30)
        options = {"log_level": "warning", "access_log": False, **options}
        try:
            super().__init__(db, args, folder=folder, startup_timeout=startup_timeout, **options)
        except BaseException:
            self.client.close()
            raise

    def stop(self) -> str:
        """Stop the server (and remove its temporary folder, when it made one); all it wrote."""
        self.client.close()
        output = super().stop()
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        return output

    # --- calling it ------------------------------------------------------------------------------
    def usersig(self, identifier: str | None = None, expire: int = 86400,
                now: int | None = None) -> str:
        return usersig.generate(self.sdkappid, self.key, identifier or self.admin, expire,
                                now=int(time.time()) if now is None else now)

    def control_usersig(self) -> str:
        """The admin's UserSig for control calls: signed beyond any clock offset the emulator
        allows, so that neither a moved clock nor a kick of the admin locks the helpers out."""
        beyond = _MAX_CLOCK_OFFSET + 86400
        return usersig.generate(self.sdkappid, self.key, self.admin, 2 * beyond + 86400,
                                now=int(time.time()) + beyond)

    def query(self, identifier: str | None = None, sig: str | None = None) -> dict[str, str]:
        identifier = identifier or self.admin
        return {"sdkappid": str(self.sdkappid), "identifier": identifier,
                "usersig": sig if sig is not None else self.usersig(identifier),
                "random": str(random.randrange(2**32)), "contenttype": "json"}

    def url(self, command: str, service: str | None = None, **query: str) -> str:
        """The full URL of a /v4 call, signed as the admin (``query`` overrides parameters);
        the service is the command's own unless given."""
        from .protocol.commands import BY_NAME

        if service is None:
            declared = BY_NAME.get(command)
            service = declared.service if declared is not None else "im_open_login_svc"
        params = {**self.query(), **query}
        return f"{self.base_url}/v4/{service}/{command}?{urlencode(params)}"

    def post(self, command: str, body: Any, **query: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return self.client.post(self.url(command, **query), content=content)

    def call(self, command: str, body: Any, **query: str) -> dict[str, Any]:
        """POST a /v4 command as the app's admin; the answer's JSON."""
        return self.post(command, body, **query).json()

    def _control_query(self) -> dict[str, str]:
        return {"sdkappid": str(self.sdkappid), "identifier": self.admin,
                "usersig": self.control_usersig()}

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a control endpoint (``/_timserver/...``) as the admin; raises ControlError."""
        params = self._control_query()
        response = self.client.request(method, f"{self.base_url}{path}", params=params,
                                       json=body if method != "GET" else None)
        answer = response.json()
        if answer.get("ErrorCode") != 0:
            raise ControlError(answer)
        return answer

    # --- the emulator ----------------------------------------------------------------------------
    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule: ``command``, ``user_id``, ``code``, ``latency_ms``, ``drop``,
        ``fail_items``, ``item_probability``, ``probability``, ``times``, ``seed``."""
        unknown = set(rule) - set(_RULE_KEYS)
        if unknown:
            raise TypeError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
        body = {_RULE_KEYS[name]: value for name, value in rule.items() if value is not None}
        return self.control("POST", "/_timserver/faults", body)["Rule"]

    def faults(self) -> list[dict[str, Any]]:
        return self.control("GET", "/_timserver/faults")["Rules"]

    def clear_faults(self, rule_id: int | None = None) -> int:
        body = {} if rule_id is None else {"Id": rule_id}
        return self.control("POST", "/_timserver/faults/clear", body)["Deleted"]

    def reset(self, *, faults: bool = True, clock: bool = True,
              kicks: bool = False) -> dict[str, Any]:
        """Empty the app (accounts, their kicks, rate windows; fault rules and clock offset too
        by default; the admins' kicks too with ``kicks``: the fixture's start of a test)."""
        body = {"Faults": faults, "Clock": clock, **({"Kicks": True} if kicks else {})}
        return self.control("POST", "/_timserver/reset", body)

    def calls(self, *, command: str | None = None, user_id: str | None = None,
              code: int | None = None, since: float | None = None,
              until: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The app's answered /v4 calls, oldest first, as the request journal recorded them
        (with bodies and UserIDs: the fixtures start the server with ``--record-bodies``)."""
        return self.calls_answer(command=command, user_id=user_id, code=code, since=since,
                                 until=until, limit=limit)["Calls"]

    def count_calls(self, **filters: Any) -> int:
        """How many recorded calls match (``calls``' filters)."""
        return int(self.calls_answer(**filters)["Count"])

    def calls_answer(self, **filters: Any) -> dict[str, Any]:
        query = {name: str(value) for name, value in filters.items() if value is not None}
        answer = self.client.get(f"{self.base_url}/_timserver/calls",
                                 params={**self._control_query(), **query}).json()
        if answer.get("ErrorCode") != 0:
            raise ControlError(answer)
        return answer

    def clear_calls(self) -> int:
        return self.control("POST", "/_timserver/calls/clear", {})["Cleared"]

    def set_clock(self, offset: float) -> dict[str, Any]:
        return self.control("POST", "/_timserver/clock", {"Offset": offset})

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.control("POST", "/_timserver/clock", {"Advance": seconds})

    # --- login state and callbacks (docs/protocol.md §11) --------------------------------------
    def login(self, user_id: str, platform: str = "Web") -> dict[str, Any]:
        """Log a simulated device of ``user_id`` in (Online); the endpoint's answer."""
        return self.control("POST", "/_timserver/login", {"UserID": user_id, "Platform": platform})

    def logout(self, user_id: str, platform: str | None = None) -> dict[str, Any]:
        """Log one device (every device without ``platform``) out."""
        body = {"UserID": user_id, **({"Platform": platform} if platform else {})}
        return self.control("POST", "/_timserver/logout", body)

    def disconnect(self, user_id: str, platform: str | None = None,
                   reason: str = "LinkClose") -> dict[str, Any]:
        """Drop a connection: mobile devices become PushOnline, the others Offline."""
        body = {"UserID": user_id, "Reason": reason, **({"Platform": platform} if platform else {})}
        return self.control("POST", "/_timserver/disconnect", body)

    def status(self, *user_ids: str) -> dict[str, str]:
        """Each UserID's login status (Online, PushOnline, Offline), by query_online_status;
        a UserID that is not imported is left out. Signed like the control helpers: a moved
        clock does not lock it out."""
        answer = (self.call("query_online_status", {"To_Account": list(user_ids)},
                            usersig=self.control_usersig())
                  if user_ids else {"QueryResult": []})
        return {item["To_Account"]: item["Status"] for item in answer.get("QueryResult", [])}

    def set_callback(self, url: str, token: str | None = None, *commands: str) -> None:
        """Send this app's third-party callbacks to ``url`` (``timserver app set-callback``)."""
        args = ["app", "set-callback", str(self.sdkappid), url]
        if token:
            args += ["--token", token]
        for command in commands:
            args += ["--command", command]
        self.cli(*args)

    def clear_callback(self) -> None:
        self.cli("app", "clear-callback", str(self.sdkappid))

    def deliveries(self) -> list[dict[str, Any]]:
        """The app's latest callback deliveries, newest first (``GET /_timserver/callbacks``)."""
        return self.control("GET", "/_timserver/callbacks")["Deliveries"]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``timserver ARGS --db <this server's database>``."""
        return subprocess.run([sys.executable, "-m", "timserver", *args, "--db", self.db],
                              capture_output=True, text=True, check=check, timeout=60)


def _create_app(db: str, sdkappid: int | None, edition: str, admin: str,
                unlimited: bool) -> tuple[int, str]:
    from .service import apps as app_rules
    from .storage import make_storage

    async def work() -> tuple[int, str]:
        storage = make_storage(db)
        await storage.open()
        try:
            app = await app_rules.create_app(storage, sdkappid=sdkappid, admins=(admin,),
                                             edition=edition)
            if unlimited:
                for name in COMMANDS:
                    await storage.update_app(app.sdkappid, limit=(name, 0))
            return app.sdkappid, app.key
        finally:
            await storage.close()
    return _in_thread(lambda: asyncio.run(work()))


def start_server(*, args: Sequence[str] = (), folder: str | Path | None = None,
                 db: str | None = None, sdkappid: int | None = None,
                 edition: str = "developer", admin: str = "administrator",
                 unlimited: bool = False, startup_timeout: float = 30.0,
                 create_app: bool = True, key: str | None = None,
                 **options: Any) -> TimServer:
    """Start a timserver on a free loopback port, with a new SQLite database and one new app.

    ``args`` go to ``timserver serve`` (e.g. ``["--throttle-hints"]``, ``["--workers", "2"]``);
    ``unlimited`` lifts the app's rate limits (the default keeps Tencent's). The database and the
    server's log live in ``folder`` (default: a temporary folder removed by ``stop``); ``db``
    names another database instead (e.g. a PostgreSQL URL), where the app is created.

    ``create_app=False`` makes no app: the helpers then sign as ``sdkappid``/``key``/``admin``,
    an app the caller made (or, without them, sign nothing useful). ``options`` go to
    ``ServeProcess`` (``log_level``, ``access_log``, ``env``, ``cwd``, ``log_name``,
    ``stop_timeout``).
    """
    owns = folder is None
    path = Path(tempfile.mkdtemp(prefix="timserver-test-")) if folder is None else Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    db = db or f"sqlite:///{path / 'timserver.db'}"
    try:
        if create_app:
            made_id, key = _create_app(db, sdkappid, edition, admin, unlimited)
        else:
            made_id, key = sdkappid or 0, key or ""
        return TimServer(db=db, folder=path, sdkappid=made_id, key=key, admin=admin, args=args,
                         owns_folder=owns, startup_timeout=startup_timeout, **options)
    except BaseException:
        if owns:
            shutil.rmtree(path, ignore_errors=True)
        raise


# --- a receiver of third-party callbacks (docs/protocol.md §11.3) --------------------------------

_OK_ANSWER = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
RECEIVER_MODES = ("ok", "fail", "text", "hang", "huge")


@dataclass(frozen=True)
class ReceivedCallback:
    """One request a ``CallbackReceiver`` got; unpacks as ``query, raw_query, path, body``."""

    query: dict[str, str]  # the query's parameters, in their order (blank ones kept)
    raw_query: str  # the query string as sent
    path: str  # the URL's path, without the query
    body: Any  # the body, decoded from JSON (None when it is not JSON)
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    content: bytes = b""  # the body as sent
    at: float = 0.0  # time.time() on arrival

    @property
    def command(self) -> str | None:
        """The query's ``CallbackCommand``."""
        return self.query.get("CallbackCommand")

    def __iter__(self) -> Iterator[Any]:
        return iter((self.query, self.raw_query, self.path, self.body))


class CallbackReceiver:
    """A receiver of third-party callbacks on a free loopback port, serving in a thread.

    Point an app at ``url`` (``server.set_callback(receiver.url)``); every request is recorded
    in ``received`` on arrival (before any wait), and answered per ``mode``:

    * ``"ok"``: HTTP 200 and Tencent's envelope, with ``error_code`` (``ActionStatus`` FAIL
      unless 0): a delivered callback;
    * ``"fail"``: HTTP 500 and a text body (``fail_body``);
    * ``"text"``: HTTP 200 and a body that is not JSON;
    * ``"huge"``: HTTP 200 and 8 MiB that are not JSON (the sender reads 64 KiB of it);
    * ``"hang"``: no answer for ``hang`` seconds (beyond the sender's 2 s), or until closed.

    ``status`` sets the HTTP status of every answer; ``delay`` waits that long before every
    answer. ``modes`` maps the first segment of a request's path to a mode of its own (e.g.
    ``{"fail": "fail"}``: requests to ``url + "fail/..."`` fail, the others answer per ``mode``).
    The attributes may be changed while it runs. Use it as a context manager, or ``close()``.
    """

    def __init__(self, mode: str = "ok", *, status: int | None = None, error_code: int = 0,
                 delay: float = 0.0, hang: float = 10.0, path: str = "/",
                 modes: Mapping[str, str] | None = None,
                 fail_body: bytes = b"receiver broke") -> None:
        for name in (mode, *(modes or {}).values()):
            if name not in RECEIVER_MODES:
                raise ValueError(f"unknown mode {name!r} (one of {', '.join(RECEIVER_MODES)})")
        self.mode = mode
        self.status = status
        self.error_code = error_code
        self.delay = delay
        self.hang = hang
        self.modes = dict(modes or {})
        self.fail_body = fail_body
        self.received: list[ReceivedCallback] = []
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._server = _ReceiverHTTPServer(("127.0.0.1", 0), _receiver_handler(self))
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/{path.lstrip('/')}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="callback-receiver", daemon=True)
        self._thread.start()

    def url_for(self, path: str) -> str:
        """The URL of ``path`` on this receiver (e.g. ``"fail/x"``, to use ``modes``)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def mode_for(self, path: str) -> str:
        return self.modes.get(path.strip("/").split("/")[0], self.mode)

    def _record(self, got: ReceivedCallback) -> None:
        with self._cond:
            self.received.append(got)
            self._cond.notify_all()

    def _answer(self, path: str) -> tuple[int, bytes, str]:
        mode = self.mode_for(path)
        if self.delay:
            self._closing.wait(self.delay)
        if mode == "hang":
            self._closing.wait(self.hang)
        if mode == "fail":
            return self.status or 500, self.fail_body, "text/plain; charset=utf-8"
        if mode == "text":
            return self.status or 200, b"fine, thanks", "text/plain; charset=utf-8"
        if mode == "huge":  # a receiver that answers far more than anyone reads
            return self.status or 200, b"x" * (8 * 1024 * 1024), "text/plain; charset=utf-8"
        answer = _OK_ANSWER if self.error_code == 0 else {
            "ActionStatus": "FAIL", "ErrorInfo": "refused by the test's CallbackReceiver",
            "ErrorCode": self.error_code}
        return (self.status or 200, json.dumps(answer, separators=(",", ":")).encode(),
                "application/json; charset=utf-8")

    def select(self, where: Callable[[ReceivedCallback], bool] | None = None,
               ) -> list[ReceivedCallback]:
        """What has been received (matching ``where``), oldest first."""
        with self._cond:
            return [got for got in self.received if where is None or where(got)]

    def wait_for(self, n: int = 1, timeout: float = 10.0,
                 where: Callable[[ReceivedCallback], bool] | None = None,
                 ) -> list[ReceivedCallback]:
        """Wait until ``n`` requests (matching ``where``) have come or ``timeout`` has passed;
        those that came (compare their number with ``n``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = self.select(where)  # the condition's lock is re-entrant
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._cond.wait(min(left, 0.1))

    def clear(self) -> None:
        with self._cond:
            self.received.clear()

    def close(self) -> None:
        """Stop serving (a hanging answer is given up)."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReceiverHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that hung up on a slow answer


def _receiver_handler(receiver: CallbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _content(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            size = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(size) if size else b""

        def _handle(self) -> None:
            content = self._content()
            parts = urlsplit(self.path)
            try:
                body = json.loads(content)
            except ValueError:
                body = None
            receiver._record(ReceivedCallback(
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                raw_query=parts.query, path=parts.path, body=body, method=self.command,
                headers={k.lower(): v for k, v in self.headers.items()}, content=content,
                at=time.time()))
            status, payload, kind = receiver._answer(parts.path)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()
    return Handler


# --- the pytest plugin (pytest_plugins = ["timserver.testing"]) ----------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def tim_server_session(tmp_path_factory: Any) -> Iterator[TimServer]:
        """One timserver for the whole test session (not reset: see ``tim_server``)."""
        server = start_server(args=["--record-bodies"], folder=tmp_path_factory.mktemp("timserver"))
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def tim_server(tim_server_session: TimServer) -> TimServer:
        """The session's timserver, reset before the test: no accounts but the admin, no kicks,
        no fault rules, the real clock, empty rate-limit windows, no recorded call."""
        tim_server_session.reset(kicks=True)
        tim_server_session.clear_calls()
        return tim_server_session
