"""Third-party callbacks (docs/protocol.md §11.3): the sender against a real receiver on a
loopback port, the deliveries endpoint, and ``timserver callbacks listen``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import Api, free_port, make_app, uid

from timserver.server.asgi import Settings
from timserver.server.callbacks import CallbackSender, sign
from timserver.service.events import STATE_CHANGE, Event
from timserver.storage import App, Callback
from timserver.testing import CallbackReceiver
from timserver.wiring import make_app as make_server


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver(path="/cb", hang=1.5) as r:
        yield r


def test_sign_is_tencents_documented_example() -> None:
    assert sign("xxxxyyyy", 1669872112) == (
        "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061")


async def _with_callback(server_app: Any, client: httpx.AsyncClient, url: str,
                         token: str | None = "tok", edition: str = "developer") -> Api:
    app = await make_app(server_app, edition=edition)
    app = await server_app.state.storage.update_app(
        app.sdkappid, callback=Callback(url, token, (STATE_CHANGE, "Profile.CallbackPortraitSet")))
    return Api(client, app)


async def test_deliveries_keep_each_userids_order_and_are_listed(server_app, client,
                                                                 receiver: CallbackReceiver) -> None:
    api = await _with_callback(server_app, client, receiver.url)
    a = uid("a")
    assert (await api.call("account_import", {"UserID": a}))["ErrorCode"] == 0
    for _ in range(5):
        await api.control("login", {"UserID": a, "Platform": "Android"})
        await api.control("logout", {"UserID": a})
    assert await server_app.state.callbacks.drain(10)
    actions = [g.body["Info"]["Action"] for g in receiver.received]
    assert actions == ["Login", "Logout"] * 5
    first = receiver.received[0]
    assert list(first.query) == ["SdkAppid", "CallbackCommand", "contenttype", "ClientIP",
                                    "OptPlatform", "Sign", "RequestTime"]
    q = first.query
    assert (q["SdkAppid"], q["CallbackCommand"], q["OptPlatform"]) == (
        str(api.app.sdkappid), STATE_CHANGE, "Android")
    assert q["Sign"] == sign("tok", int(q["RequestTime"]))
    assert abs(int(q["RequestTime"]) - time.time()) < 30
    listed = (await client.get("/_timserver/callbacks",
                               params=_admin_query(api))).json()
    assert listed["ErrorCode"] == 0 and listed["Count"] == 10
    assert listed["Callback"] == {"Url": receiver.url, "Token": True,
                                  "Commands": [STATE_CHANGE, "Profile.CallbackPortraitSet"]}
    newest = listed["Deliveries"][0]
    assert newest["Outcome"] == "delivered" and newest["Status"] == 200
    assert "Sign=" not in newest["Url"] and "tok" not in json.dumps(listed)
    assert json.loads(newest["Body"])["Info"]["Action"] == "Logout"


def _admin_query(api: Api) -> dict[str, str]:
    from support import query

    return query(api.app, random=None, contenttype=None)


@pytest.mark.parametrize(("mode", "error"), [("fail", "HTTP 500"), ("text", "not JSON"),
                                             ("huge", "longer than 64 KiB")])
async def test_a_receiver_that_refuses_is_a_failed_delivery(server_app, client,
                                                            receiver: CallbackReceiver, mode: str,
                                                            error: str) -> None:
    receiver.mode = mode
    api = await _with_callback(server_app, client, receiver.url, token=None)
    a = uid("a")
    await api.call("account_import", {"UserID": a})
    await api.call("portrait_set", {"From_Account": a, "ProfileItem": [
        {"Tag": "Tag_Profile_IM_Nick", "Value": "n"}]})
    assert await server_app.state.callbacks.drain(10)
    (got,) = receiver.received
    assert "Sign" not in got.query and got.query["OptPlatform"] == "RESTAPI"
    assert got.body["Operator_Account"] == api.app.admins[0]
    (delivery,) = server_app.state.callbacks.deliveries(api.app.sdkappid)
    assert delivery.Outcome == "failed" and error in delivery.Error, delivery
    assert len(delivery.Answer) <= 2000  # what is kept of an answer, whatever its size


async def test_a_hanging_receiver_is_given_up_and_delays_no_answer(receiver: CallbackReceiver) -> None:
    receiver.mode = "hang"
    sender = CallbackSender(timeout=0.3)
    app = App(1400000009, "0" * 64, "developer", ("administrator",),
              callback=Callback(receiver.url, None, (STATE_CHANGE,)))
    started = time.perf_counter()
    for n in range(3):
        sender.emit(app, Event(STATE_CHANGE, f"u{n}", {"n": n}, "Web", "127.0.0.1"))
    assert time.perf_counter() - started < 0.1  # emit never waits for the receiver
    assert await sender.drain(5)
    outcomes = {(d.Outcome, d.Error) for d in sender.deliveries(app.sdkappid)}
    assert outcomes == {("failed", "no answer within 0.3 s")}
    await sender.shutdown()


async def test_a_full_queue_drops_and_counts(receiver: CallbackReceiver) -> None:
    from prometheus_client import REGISTRY

    receiver.mode = "hang"
    sender = CallbackSender(timeout=0.3, queue_limit=2)
    app = App(1400000010, "0" * 64, "developer", ("administrator",),
              callback=Callback(receiver.url, None, (STATE_CHANGE,)))
    label = {"command": STATE_CHANGE, "outcome": "dropped"}
    before = REGISTRY.get_sample_value("timserver_callbacks_total", label) or 0
    for n in range(5):
        sender.emit(app, Event(STATE_CHANGE, "same", {"n": n}, "Web", ""))
    assert REGISTRY.get_sample_value("timserver_callbacks_total", label) == before + 3
    assert await sender.drain(5)
    assert [json.loads(d.Body)["n"] for d in reversed(sender.deliveries(app.sdkappid))] == [0, 1]
    await sender.shutdown()


async def test_commands_switched_off_and_apps_without_a_url_send_nothing(receiver) -> None:
    sender = CallbackSender()
    quiet = App(1, "0" * 64, "developer", ("a",), callback=Callback(receiver.url, None,
                                                                     ("Profile.CallbackPortraitSet",)))
    none = App(2, "0" * 64, "developer", ("a",))
    for app in (quiet, none):
        sender.emit(app, Event(STATE_CHANGE, "u", {}, "Web", ""))
    assert await sender.drain(2)
    assert receiver.received == [] and sender.deliveries(1) == [] == sender.deliveries(2)
    await sender.shutdown()


async def test_production_sends_callbacks_but_serves_no_logins(tmp_path, receiver) -> None:
    """With the emulator off the callbacks stay (they are Tencent's); simulated logins go."""
    server = make_server(Settings(db=f"sqlite:///{tmp_path / 'p.db'}", emulator=False))
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            api = await _with_callback(server, client, receiver.url)
            a = uid("a")
            await api.call("account_import", {"UserID": a})
            assert (await api.control("login", {"UserID": a, "Platform": "Web"}))[
                "ErrorCode"] == 60009
            await api.call("portrait_set", {"From_Account": a, "ProfileItem": [
                {"Tag": "Tag_Profile_IM_Nick", "Value": "n"}]})
            assert await server.state.callbacks.drain(10)
            assert [g.query["CallbackCommand"] for g in receiver.received] == [
                "Profile.CallbackPortraitSet"]
            assert (await api.call("query_online_status", {"To_Account": [a]}))[
                "QueryResult"] == [{"To_Account": a, "Status": "Offline"}]


def test_callbacks_listen_checks_the_sign_and_answers_as_told(tmp_path) -> None:
    """``timserver callbacks listen``: one JSON line per callback, the Sign judged."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "timserver", "callbacks", "listen", "--port", str(port),
         "--token", "tok", "--json", "--error-code", "1234"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}/any"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.1)
        assert proc.stdout is not None
        proc.stdout.readline()  # the probe's line
        now = int(time.time())
        good = httpx.post(url, params={"CallbackCommand": STATE_CHANGE, "Sign": sign("tok", now),
                                       "RequestTime": str(now)}, content=b'{"a":1}')
        assert good.status_code == 200 and good.json()["ErrorCode"] == 1234
        line = json.loads(proc.stdout.readline())
        assert (line["Sign"], line["Body"]) == ("valid", '{"a":1}')
        assert line["RequestTime"].startswith("fresh")
        httpx.post(url, params={"Sign": "0" * 64, "RequestTime": str(now - 3600)}, content=b"{}")
        line = json.loads(proc.stdout.readline())
        assert line["Sign"].startswith("INVALID") and line["RequestTime"].startswith("STALE")
    finally:
        proc.terminate()
        proc.wait(10)
