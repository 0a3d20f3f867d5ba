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

Nothing here runs at import: the fixtures start a server only when a test asks for one.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from . import usersig
from .emulator.state import MAX_CLOCK_OFFSET as _MAX_CLOCK_OFFSET

__all__ = ["ControlError", "TimServer", "start_server"]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class TimServer:
    """A running timserver process and the app it hosts; the helpers speak HTTP to it."""

    def __init__(self, *, db: str, folder: Path, sdkappid: int, key: str, admin: str,
                 args: Sequence[str] = (), owns_folder: bool = False,
                 startup_timeout: float = 30.0) -> None:
        self.db = db
        self.folder = folder
        self.sdkappid = sdkappid
        self.key = key
        self.admin = admin
        self.args = list(args)
        self.log_path = folder / "server.log"
        self._owns_folder = owns_folder
        self._startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base_url = ""
        self.client = httpx.Client(timeout=30)
        self._start()

    # --- life cycle ------------------------------------------------------------------------------
    def _start(self) -> None:
        for attempt in range(3):  # a free port may be taken between the probe and the bind
            self.port = _free_port()
            self.base_url = f"http://127.0.0.1:{self.port}"
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "timserver", "serve", "--host", "127.0.0.1",
                     "--port", str(self.port), "--db", self.db, "--log-level", "warning",
                     "--no-access-log", *self.args],
                    stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            if self._wait_ready():
                return
            if attempt == 2 or "address already in use" not in self.logs().lower():
                raise RuntimeError(f"timserver did not start; its output:\n{self.logs()[-4000:]}")

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
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the server (and remove its temporary folder, when it made one)."""
        self.client.close()
        self._terminate()
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start the server again on the same database (a new port)."""
        self._terminate()
        self._start()

    def logs(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> TimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
                 unlimited: bool = False, startup_timeout: float = 30.0) -> TimServer:
    """Start a timserver on a free loopback port, with a new SQLite database and one new app.

    ``args`` go to ``timserver serve`` (e.g. ``["--throttle-hints"]``, ``["--workers", "2"]``);
    ``unlimited`` lifts the app's rate limits (the default keeps Tencent's). The database and the
    server's log live in ``folder`` (default: a temporary folder removed by ``stop``); ``db``
    names another database instead (e.g. a PostgreSQL URL), where the app is created.
    """
    owns = folder is None
    path = Path(tempfile.mkdtemp(prefix="timserver-test-")) if folder is None else Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    db = db or f"sqlite:///{path / 'timserver.db'}"
    try:
        made_id, key = _create_app(db, sdkappid, edition, admin, unlimited)
        return TimServer(db=db, folder=path, sdkappid=made_id, key=key, admin=admin, args=args,
                         owns_folder=owns, startup_timeout=startup_timeout)
    except BaseException:
        if owns:
            shutil.rmtree(path, ignore_errors=True)
        raise


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
