"""Helpers for the contract tests of docs/protocol.md §11: login state, callbacks, profiles,
deletion by edition.

Like contract_support.py (which this module only imports from), everything is driven through
the CLI (``python -m timserver ...``) and over HTTP on 127.0.0.1:

* ``new_apps`` creates the apps a test module needs in the session's database (through
  ``timserver app create``) and waits until the running server sees them;
* ``ext`` / ``login`` / ``logout`` / ``disconnect`` / ``set_clock`` call the ``/_timserver/``
  endpoints, signed like a /v4 call;
* ``online`` / ``state`` / ``detail`` read login state through ``v4/openim/query_online_status``;
* ``Receiver`` is a third-party callback receiver (timserver.testing's ``CallbackReceiver``: an
  ``http.server`` in a thread, loopback only) that records every delivery;
* ``cli`` runs a CLI command with the connection settings in the environment.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from contract_support import ADMIN, App, Reply, cli_create_app, official_sig

from timserver.testing import CallbackReceiver, ReceivedCallback

OPENIM = "openim"
PROFILE = "profile"
PLATFORMS = ("iPhone", "Android", "Web", "PC", "iPad", "Mac")
MOBILE = ("iPhone", "Android", "iPad")  # disconnect -> PushOnline
DESKTOP = ("Web", "PC", "Mac")  # disconnect -> Offline
# docs/protocol.md §11.3: OptPlatform (and KickedDevice) spell the platforms this way
CALLBACK_PLATFORM = {"iPhone": "IOS", "Android": "Android", "Web": "Web", "PC": "Windows", "iPad": "iPad", "Mac": "Mac"}
NICK = "Tag_Profile_IM_Nick"
IMAGE = "Tag_Profile_IM_Image"
DAY = 86400
LONG_EXPIRE = 400 * DAY


class LongApp(App):
    """An app whose UserSigs (by default) stay valid for 400 days: for apps whose clock a test
    moves forward by weeks or months."""

    def sig(self, identifier: str = ADMIN, expire: int = LONG_EXPIRE) -> str:
        return official_sig(self.sdkappid, self.key, identifier, expire)


# --------------------------------------------------------------------------------------------
# Apps created at run time in the session's database
# --------------------------------------------------------------------------------------------


def wait_app_visible(api, app: App, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = api.check(app, ["probe"])
        if r.code != 60006:
            assert r.code == 0, r
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not see app {app.sdkappid} within {timeout}s")
        time.sleep(0.1)


def new_apps(server, api, specs: list[App]) -> dict[str, App]:
    """Create the apps (each with a fresh SDKAppID that no other module uses) through
    `timserver app create --db <the server's database>`; return them by name once the running
    server answers for every one of them."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(lambda a: cli_create_app(server.db, a, cwd=server.workdir), specs))
    for a in specs:
        wait_app_visible(api, a)
    return {a.name: a for a in specs}


# --------------------------------------------------------------------------------------------
# CLI with connection settings in the environment
# --------------------------------------------------------------------------------------------


def cli(server, app: App, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `timserver ARGS`, with the database and the endpoint, key and admin of `app` in the
    environment (TIMSERVER_DB, TIMSERVER_ENDPOINT, TIMSERVER_KEY, TIMSERVER_ADMIN), so that the
    command finds its connection whichever of the usual options it takes."""
    env = dict(os.environ)
    env.update(
        TIMSERVER_DB=server.db,
        TIMSERVER_ENDPOINT=server.base_url,
        TIMSERVER_SDKAPPID=str(app.sdkappid),
        TIMSERVER_KEY=app.key,
        TIMSERVER_ADMIN=ADMIN,
    )
    return subprocess.run(
        [sys.executable, "-m", "timserver", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=server.workdir,
        env=env,
    )


def cli_ok(server, app: App, *args: str) -> subprocess.CompletedProcess:
    p = cli(server, app, *args)
    assert p.returncode == 0, f"timserver {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def set_callback(server, app: App, url: str, token: str | None = None, commands: tuple = ()) -> None:
    args = ["app", "set-callback", "--db", server.db, str(app.sdkappid), url]
    if token is not None:
        args += ["--token", token]
    for c in commands:
        args += ["--command", c]
    cli_ok(server, app, *args)


def clear_callback(server, app: App) -> None:
    cli_ok(server, app, "app", "clear-callback", "--db", server.db, str(app.sdkappid))


# --------------------------------------------------------------------------------------------
# /_timserver/ endpoints
# --------------------------------------------------------------------------------------------


def ext_url(api, path: str, app: App, identifier: str = ADMIN, usersig: str | None = None, full: bool = True) -> str:
    if usersig is None:
        usersig = app.sig(identifier)
    params = [("sdkappid", app.sdkappid), ("identifier", identifier), ("usersig", usersig)]
    if full:  # allowed on the control endpoints, required on /v4
        params += [("random", random.randint(0, 4294967295)), ("contenttype", "json")]
    qs = "&".join(f"{k}={quote(str(v), safe='*-_.~')}" for k, v in params)
    return f"{api.base_url}/_timserver/{path}?{qs}"


def ext(
    api, path: str, body: Any, app: App, *, identifier: str = ADMIN, usersig: str | None = None, full: bool = True
) -> Reply:
    """POST /_timserver/PATH with a JSON body (bytes are sent as they are); the answer is checked
    to be Tencent's envelope (HTTP 200, Content-Type, the three fields)."""
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    url = ext_url(api, path, app, identifier, usersig, full)
    return Reply(api.client.post(url, content=content, headers={"Content-Type": "application/json"}))


def login(api, app: App, user: str, platform: str, **kw: Any) -> Reply:
    return ext(api, "login", {"UserID": user, "Platform": platform}, app, **kw)


def logout(api, app: App, user: str, platform: str | None = None, **kw: Any) -> Reply:
    body: dict[str, Any] = {"UserID": user}
    if platform is not None:
        body["Platform"] = platform
    return ext(api, "logout", body, app, **kw)


def disconnect(api, app: App, user: str, platform: str | None = None, reason: str | None = None, **kw: Any) -> Reply:
    body: dict[str, Any] = {"UserID": user}
    if platform is not None:
        body["Platform"] = platform
    if reason is not None:
        body["Reason"] = reason
    return ext(api, "disconnect", body, app, **kw)


def ok(reply: Reply) -> Reply:
    assert reply.code == 0, reply
    return reply


def set_clock(api, app: App, offset: float) -> Reply:
    """POST /_timserver/clock {"Offset": s}: the app's own clock offset (docs/emulator.md)."""
    return ok(ext(api, "clock", {"Offset": offset}, app, full=False))


# --------------------------------------------------------------------------------------------
# Login state through v4/openim/query_online_status
# --------------------------------------------------------------------------------------------


def online(api, app: App, users: list, command: str = "query_online_status", **flags: Any) -> Reply:
    return api.post(command, {"To_Account": list(users), **flags}, app, service=OPENIM)


def state(api, app: App, user: str) -> str:
    r = online(api, app, [user])
    assert r.code == 0, r
    (item,) = r["QueryResult"]
    assert item["To_Account"] == user
    return item["Status"]


def detail(api, app: App, user: str) -> dict[str, str]:
    """Platform -> Status of the user's devices (IsNeedDetail 1); each platform at most once."""
    r = online(api, app, [user], IsNeedDetail=1)
    assert r.code == 0, r
    (item,) = r["QueryResult"]
    items = item.get("Detail", [])
    platforms = [d["Platform"] for d in items]
    assert len(platforms) == len(set(platforms)), f"a platform listed twice: {items!r}"
    return {d["Platform"]: d["Status"] for d in items}


def live(d: dict[str, str]) -> dict[str, str]:
    """The devices of a Detail map that are not Offline (a logged-out device may be listed as
    Offline or not at all)."""
    return {p: s for p, s in d.items() if s != "Offline"}


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def portrait_get(api, app: App, users: list, tags: list = (NICK, IMAGE), **kw: Any) -> Reply:
    return api.post("portrait_get", {"To_Account": list(users), "TagList": list(tags)}, app, service=PROFILE, **kw)


def portrait_set(api, app: App, user: str, items: list[tuple[str, Any]], **kw: Any) -> Reply:
    body = {"From_Account": user, "ProfileItem": [{"Tag": t, "Value": v} for t, v in items]}
    return api.post("portrait_set", body, app, service=PROFILE, **kw)


def profile_of(api, app: App, user: str) -> dict[str, str]:
    r = portrait_get(api, app, [user])
    assert r.code == 0, r
    (item,) = r["UserProfileItem"]
    assert item["ResultCode"] == 0, item
    return {p["Tag"]: p["Value"] for p in item["ProfileItem"]}


# --------------------------------------------------------------------------------------------
# A third-party callback receiver
# --------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    method: str
    path: str  # without the query
    raw_query: str
    query: list[tuple[str, str]]  # in order
    headers: dict[str, str]
    body: bytes
    received: float  # time.time()
    data: Any = field(default=None)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    @property
    def command(self) -> str | None:
        return self.params.get("CallbackCommand")

    @property
    def user(self) -> str | None:
        """The UserID the event is about (State.StateChange: Info.To_Account; portrait set:
        From_Account)."""
        if not isinstance(self.data, dict):
            return None
        info = self.data.get("Info")
        if isinstance(info, dict) and "To_Account" in info:
            return info["To_Account"]
        return self.data.get("From_Account")


class Receiver:
    """A callback receiver on 127.0.0.1 (a free port), serving in a thread: timserver.testing's
    CallbackReceiver, its records seen as Deliveries.

    The first path segment picks the behaviour: ``/hang/...`` waits 10 s before answering,
    ``/fail/...`` answers HTTP 500, anything else answers 200 with Tencent's OK envelope.
    Every request is recorded on arrival (before any wait)."""

    HANG_SECONDS = 10.0

    def __init__(self) -> None:
        self.receiver = CallbackReceiver(modes={"hang": "hang", "fail": "fail"},
                                         hang=self.HANG_SECONDS, fail_body=b"internal error")
        self.port = self.receiver.port

    def url(self, path: str) -> str:
        return self.receiver.url_for(path)

    def close(self) -> None:
        self.receiver.close()

    @staticmethod
    def _matches(d: Delivery, path: str | None = None, user: str | None = None,
                 command: str | None = None) -> bool:
        return ((path is None or d.path == "/" + path.strip("/")) and (user is None or d.user == user)
                and (command is None or d.command == command))

    def select(self, path: str | None = None, user: str | None = None, command: str | None = None) -> list[Delivery]:
        out = [_delivery(got) for got in self.receiver.select()]
        return [d for d in out if self._matches(d, path, user, command)]

    def wait(self, n: int = 1, timeout: float = 5.0, **sel: Any) -> list[Delivery]:
        """Wait until at least n deliveries match `sel` (path/user/command); return them all."""
        got = self.receiver.wait_for(n, timeout, lambda g: self._matches(_delivery(g), **sel))
        return [_delivery(g) for g in got]

    def quiet(self, seconds: float, **sel: Any) -> list[Delivery]:
        """Wait `seconds`, then return the deliveries matching `sel` (to show none came)."""
        time.sleep(seconds)
        return self.select(**sel)


def _delivery(got: ReceivedCallback) -> Delivery:
    return Delivery(method=got.method, path=got.path, raw_query=got.raw_query,
                    query=parse_qsl(got.raw_query, keep_blank_values=True), headers=got.headers,
                    body=got.content, received=got.at, data=got.body)


def poll_until(fn: Callable[[], Any], timeout: float = 10.0, interval: float = 0.2) -> Any:
    """Call fn until it returns a truthy value (returned) or the time runs out (then the last
    value is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
