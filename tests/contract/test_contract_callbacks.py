"""docs/protocol.md §11.3: third-party callbacks (`State.StateChange`,
`Profile.CallbackPortraitSet`), configured with `timserver app set-callback` / `clear-callback`.

A real HTTP receiver runs on a loopback port in a thread (contract_logins_support.Receiver);
each app of this module sends to its own path of it:

* `cb_main`  -> /main    token `tok-13`, both commands;
* `cb_plain` -> /plain   no token, State.StateChange only;
* `cb_hang`  -> /hang    the receiver waits 10 s before answering;
* `cb_fail`  -> /fail    the receiver answers HTTP 500;
* `cb_slow`  -> /hang/slow  the receiver waits 10 s, State.StateChange only;
* `cb_clear` -> /clear   for clear-callback.
"""

import hashlib
import time

import pytest
from contract_logins_support import (
    CALLBACK_PLATFORM,
    IMAGE,
    NICK,
    PLATFORMS,
    Receiver,
    clear_callback,
    disconnect,
    login,
    logout,
    new_apps,
    ok,
    portrait_set,
    set_callback,
    state,
)
from contract_support import ADMIN, App, uid

pytestmark = pytest.mark.slow

TOKEN = "tok-13"
STATE = "State.StateChange"
PORTRAIT = "Profile.CallbackPortraitSet"
BOTH = (STATE, PORTRAIT)
QUERY_KEYS = ["SdkAppid", "CallbackCommand", "contenttype", "ClientIP", "OptPlatform"]
FAST = 1.5  # seconds: "well under" the receiver's 2 s deadline


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def cb(server, api, receiver):
    apps = new_apps(
        server,
        api,
        [
            App("cb_main", 1400001321, "developer", [ADMIN]),
            App("cb_plain", 1400001322, "developer", [ADMIN]),
            App("cb_hang", 1400001323, "developer", [ADMIN]),
            App("cb_fail", 1400001324, "developer", [ADMIN]),
            App("cb_clear", 1400001325, "developer", [ADMIN]),
            App("cb_slow", 1400001326, "developer", [ADMIN]),
        ],
    )
    set_callback(server, apps["cb_main"], receiver.url("main"), token=TOKEN, commands=BOTH)
    set_callback(server, apps["cb_plain"], receiver.url("plain"), commands=(STATE,))
    set_callback(server, apps["cb_hang"], receiver.url("hang"), token=TOKEN, commands=BOTH)
    set_callback(server, apps["cb_fail"], receiver.url("fail"), token=TOKEN, commands=BOTH)
    set_callback(server, apps["cb_clear"], receiver.url("clear"), token=TOKEN, commands=BOTH)
    set_callback(server, apps["cb_slow"], receiver.url("hang/slow"), commands=(STATE,))
    # (the hanging ones are not primed: their first callback is checked by their tests)
    for name in ("cb_main", "cb_plain", "cb_fail", "cb_clear"):
        prime(api, receiver, apps[name], name[3:])
    return apps


def prime(api, receiver, app, path, timeout=10.0):
    """Log a throw-away user in until its callback arrives: the running server has read the
    app's callback settings."""
    u = uid("prime")
    assert api.import_one(app, u).code == 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok(login(api, app, u, "Web"))
        if receiver.wait(1, timeout=1.0, path=path, user=u):
            return
    raise AssertionError(f"no callback reached /{path} within {timeout}s of set-callback")


def fresh(api, app, prefix="c"):
    u = uid(prefix)
    assert api.import_one(app, u).code == 0
    return u


def events(receiver, path, user, n=1, timeout=5.0):
    got = receiver.wait(n, timeout=timeout, path=path, user=user)
    assert len(got) >= n, f"expected {n} callbacks for {user} at /{path}, got {len(got)}: {[d.data for d in got]}"
    return got


def sign(token, t):
    return hashlib.sha256((token + str(t)).encode("utf-8")).hexdigest()


def assert_query(d, app, command, opt_platform, token=TOKEN):
    """The exact query string of docs/protocol.md §11.3, in its order."""
    p = d.params
    keys = QUERY_KEYS + (["Sign", "RequestTime"] if token else [])
    assert [k for k, _ in d.query] == keys, d.raw_query
    assert p["SdkAppid"] == str(app.sdkappid)
    assert p["CallbackCommand"] == command
    assert p["contenttype"] == "json"
    assert p["ClientIP"] == "127.0.0.1"
    assert p["OptPlatform"] == opt_platform
    if token:
        t = p["RequestTime"]
        assert t.isdigit() and abs(int(t) - d.received) < 60, t
        assert p["Sign"] == sign(token, t), d.raw_query
    expected = f"SdkAppid={app.sdkappid}&CallbackCommand={command}&contenttype=json"
    expected += f"&ClientIP=127.0.0.1&OptPlatform={opt_platform}"
    if token:
        expected += f"&Sign={p['Sign']}&RequestTime={p['RequestTime']}"
    assert d.raw_query == expected


def assert_state_body(d, action, user, reason, kicked=None):
    body = d.data
    assert isinstance(body, dict), d.body
    expected_keys = {"CallbackCommand", "EventTime", "Info"} | ({"KickedDevice"} if kicked is not None else set())
    assert set(body) == expected_keys, body
    assert body["CallbackCommand"] == STATE
    assert type(body["EventTime"]) is int and abs(body["EventTime"] - d.received * 1000) < 60_000, body
    assert body["Info"] == {"Action": action, "To_Account": user, "Reason": reason}, body
    if kicked is not None:
        assert body["KickedDevice"] == kicked, body


def summary(ds):
    return [(d.data["Info"]["Action"], d.data["Info"]["Reason"], d.params["OptPlatform"]) for d in ds]


# ------------------------------------------------------------------ the request


def test_login_callback_query_string(api, cb, receiver):
    """docs/protocol.md §11.3: POST {URL}?SdkAppid&CallbackCommand&contenttype=json&ClientIP&
    OptPlatform&Sign&RequestTime, Sign = hex SHA-256 of token + t (the documented example:
    token `xxxxyyyy`, t 1669872112)."""
    assert sign("xxxxyyyy", 1669872112) == "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "Web"))
    (d,) = events(receiver, "main", u)
    assert d.method == "POST"
    assert_query(d, app, STATE, "Web")


def test_login_callback_body(api, cb, receiver):
    """docs/protocol.md §11.3: State.StateChange body for a login: Login/Register, EventTime in
    milliseconds, no KickedDevice."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "Android"))
    (d,) = events(receiver, "main", u)
    assert_state_body(d, "Login", u, "Register")
    assert d.params["OptPlatform"] == "Android"


def test_no_token_no_sign(api, cb, receiver):
    """docs/protocol.md §11.3: without a token, no Sign and no RequestTime."""
    app = cb["cb_plain"]
    u = fresh(api, app)
    ok(login(api, app, u, "Mac"))
    (d,) = events(receiver, "plain", u)
    assert_query(d, app, STATE, "Mac", token=None)
    assert_state_body(d, "Login", u, "Register")


def test_opt_platform_spelling(api, cb, receiver):
    """docs/protocol.md §11.3: OptPlatform for simulated logins: IOS (iPhone), Android, Web,
    Windows (PC), iPad, Mac."""
    app = cb["cb_main"]
    users = {p: fresh(api, app) for p in PLATFORMS}
    for p, u in users.items():
        ok(login(api, app, u, p))
    for p, u in users.items():
        (d,) = events(receiver, "main", u)
        assert d.params["OptPlatform"] == CALLBACK_PLATFORM[p], (p, d.raw_query)
        assert_state_body(d, "Login", u, "Register")


# ------------------------------------------------------------------ State.StateChange events


@pytest.mark.parametrize("platform", ["iPhone", "PC"])
def test_second_login_same_platform_names_kicked_device(api, cb, receiver, platform):
    """docs/protocol.md §11.2/§11.3: a second login on the same platform replaces the device:
    one Login/Register callback whose KickedDevice names it (callback spelling)."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, platform))
    events(receiver, "main", u, 1)
    ok(login(api, app, u, platform))
    ds = events(receiver, "main", u, 2)
    second = ds[1]
    spelled = CALLBACK_PLATFORM[platform]
    assert second.params["OptPlatform"] == spelled
    assert_state_body(second, "Login", u, "Register", kicked=[{"Platform": spelled}])
    assert "KickedDevice" not in ds[0].data
    assert len(receiver.quiet(0.5, path="main", user=u)) == 2


def test_disconnect_iphone_is_pushonline_callback(api, cb, receiver):
    """docs/protocol.md §11.3: disconnect on iPhone -> Disconnect/LinkClose, OptPlatform IOS
    (the device is PushOnline)."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "iPhone"))
    ok(disconnect(api, app, u, "iPhone"))
    ds = events(receiver, "main", u, 2)
    assert_query(ds[1], app, STATE, "IOS")
    assert_state_body(ds[1], "Disconnect", u, "LinkClose")
    assert state(api, app, u) == "PushOnline"


def test_disconnect_web_timeout_callback(api, cb, receiver):
    """docs/protocol.md §11.3: disconnect on Web with Reason TimeOut -> Disconnect/TimeOut,
    OptPlatform Web (the device is Offline)."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "Web"))
    ok(disconnect(api, app, u, "Web", reason="TimeOut"))
    ds = events(receiver, "main", u, 2)
    assert_query(ds[1], app, STATE, "Web")
    assert_state_body(ds[1], "Disconnect", u, "TimeOut")
    assert state(api, app, u) == "Offline"


def test_logout_callback(api, cb, receiver):
    """docs/protocol.md §11.3: logout -> Logout/Unregister with the device's OptPlatform."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "iPad"))
    ok(logout(api, app, u, "iPad"))
    ds = events(receiver, "main", u, 2)
    assert_query(ds[1], app, STATE, "iPad")
    assert_state_body(ds[1], "Logout", u, "Unregister")


def test_kick_sends_one_logout_unregister_from_restapi(api, cb, receiver):
    """docs/protocol.md §11.3: a REST kick of a UserID with devices online sends one
    Logout/Unregister, OptPlatform RESTAPI."""
    app = cb["cb_main"]
    u = fresh(api, app)
    ok(login(api, app, u, "iPhone"))
    ok(login(api, app, u, "Web"))
    events(receiver, "main", u, 2)
    assert api.kick(app, u).code == 0
    ds = events(receiver, "main", u, 3)
    assert_query(ds[2], app, STATE, "RESTAPI")
    assert_state_body(ds[2], "Logout", u, "Unregister")
    assert len(receiver.quiet(0.8, path="main", user=u)) == 3


def test_kick_without_devices_sends_nothing(api, cb, receiver):
    """docs/protocol.md §11.3: only a kick of a UserID with devices online sends a callback;
    the next event of that UserID is the first to arrive."""
    app = cb["cb_main"]
    u = fresh(api, app)
    assert api.kick(app, u).code == 0
    ok(login(api, app, u, "Web"))
    ds = events(receiver, "main", u, 1)
    assert_state_body(ds[0], "Login", u, "Register")
    assert len(receiver.quiet(0.5, path="main", user=u)) == 1


def test_events_of_a_user_arrive_in_order(api, cb, receiver):
    """docs/protocol.md §11.3: the callbacks of one UserID arrive in the order of its events;
    EventTime does not go back."""
    app = cb["cb_main"]
    u, v = fresh(api, app), fresh(api, app)
    ok(login(api, app, u, "Web"))
    ok(login(api, app, v, "Android"))
    ok(login(api, app, u, "iPhone"))
    ok(disconnect(api, app, v, "Android"))
    ok(disconnect(api, app, u, "iPhone"))
    ok(logout(api, app, u, "iPhone"))
    ok(logout(api, app, v, "Android"))
    ok(logout(api, app, u, "Web"))
    du = events(receiver, "main", u, 5)
    dv = events(receiver, "main", v, 3)
    assert summary(du) == [
        ("Login", "Register", "Web"),
        ("Login", "Register", "IOS"),
        ("Disconnect", "LinkClose", "IOS"),
        ("Logout", "Unregister", "IOS"),
        ("Logout", "Unregister", "Web"),
    ]
    assert summary(dv) == [
        ("Login", "Register", "Android"),
        ("Disconnect", "LinkClose", "Android"),
        ("Logout", "Unregister", "Android"),
    ]
    for ds in (du, dv):
        times = [d.data["EventTime"] for d in ds]
        assert times == sorted(times), times


def test_no_callback_for_import_or_delete(api, cb, receiver):
    """docs/protocol.md §11.3: Tencent sends no callback for account import or delete (the
    first callback naming the UserID is that of its later login)."""
    app = cb["cb_main"]
    u = uid("imp")
    assert api.post("multiaccount_import", {"AccountList": [{"UserID": u, "Nick": "n"}]}, app).code == 0
    assert api.delete(app, [u])["ResultItem"][0]["ResultCode"] == 0
    assert api.import_one(app, u, Nick="m").code == 0
    ok(login(api, app, u, "Web"))
    events(receiver, "main", u, 1)
    time.sleep(0.3)
    naming = [d for d in receiver.select(path="main") if u.encode() in d.body]
    assert len(naming) == 1 and naming[0].data["Info"]["Action"] == "Login", [d.data for d in naming]


# ------------------------------------------------------------------ Profile.CallbackPortraitSet


def test_portrait_set_callback(api, cb, receiver):
    """docs/protocol.md §11.3: after a successful portrait_set, Profile.CallbackPortraitSet with
    Operator_Account (the admin), From_Account, EventTime (ms), ProfileItem; OptPlatform RESTAPI.
    A failed portrait_set sends nothing."""
    app = cb["cb_main"]
    u = fresh(api, app)
    assert portrait_set(api, app, u, [(NICK, "x" * 501)]).code == 40601
    assert portrait_set(api, app, u, [(NICK, "Ann"), (IMAGE, "http://a/b.png")]).code == 0
    (d,) = events(receiver, "main", u)
    assert_query(d, app, PORTRAIT, "RESTAPI")
    body = d.data
    assert set(body) == {"CallbackCommand", "Operator_Account", "From_Account", "EventTime", "ProfileItem"}, body
    assert body["CallbackCommand"] == PORTRAIT
    assert body["Operator_Account"] == ADMIN
    assert body["From_Account"] == u
    assert type(body["EventTime"]) is int and abs(body["EventTime"] - d.received * 1000) < 60_000
    assert body["ProfileItem"] == [{"Tag": NICK, "Value": "Ann"}, {"Tag": IMAGE, "Value": "http://a/b.png"}]
    assert len(receiver.quiet(0.5, path="main", user=u)) == 1


def test_command_not_switched_on_is_not_sent(api, cb, receiver):
    """docs/protocol.md §11.3: only the callback commands switched on are sent (cb_plain has
    State.StateChange only): its portrait_set sends nothing, its next login does."""
    app = cb["cb_plain"]
    u = fresh(api, app)
    assert portrait_set(api, app, u, [(NICK, "Bea")]).code == 0
    ok(login(api, app, u, "Web"))
    events(receiver, "plain", u, 1)
    time.sleep(0.3)
    ds = receiver.select(path="plain", user=u)
    assert [d.command for d in ds] == [STATE]


# ------------------------------------------------------------------ clear-callback


def test_clear_callback_stops_deliveries(api, server, cb, receiver):
    """docs/protocol.md §11.3: `timserver app clear-callback N` stops the deliveries."""
    app = cb["cb_clear"]
    u = fresh(api, app)
    ok(login(api, app, u, "Web"))
    events(receiver, "clear", u, 1)
    clear_callback(server, app)
    deadline = time.monotonic() + 10
    stopped = False
    while time.monotonic() < deadline and not stopped:
        w = fresh(api, app)
        ok(login(api, app, w, "Web"))
        stopped = not receiver.wait(1, timeout=1.0, path="clear", user=w)
    assert stopped, "callbacks still delivered 10 s after clear-callback"
    w = fresh(api, app)
    ok(login(api, app, w, "PC"))
    ok(portrait_set(api, app, w, [(NICK, "quiet")]))
    assert receiver.quiet(1.0, path="clear", user=w) == []


# ------------------------------------------------------------------ failed deliveries


def test_failed_delivery_is_not_retried(api, cb, receiver):
    """docs/protocol.md §11.3: a non-200 answer, or none within 2 s, is a failed delivery, not
    retried by default."""
    fail, slow = cb["cb_fail"], cb["cb_slow"]
    u, v = fresh(api, fail), fresh(api, slow)
    t0 = time.monotonic()
    ok(login(api, fail, u, "Web"))
    ok(login(api, slow, v, "Android"))
    assert time.monotonic() - t0 < 2 * FAST
    events(receiver, "fail", u, 1)
    events(receiver, "hang/slow", v, 1)
    time.sleep(3.5)  # beyond the 2 s deadline of the hanging one, and a first retry's backoff
    assert len(receiver.select(path="fail", user=u)) == 1
    assert len(receiver.select(path="hang/slow", user=v)) == 1


# ------------------------------------------------------------------ a hanging receiver
# (last in the module: with a single delivery queue, the hung deliveries it leaves behind
# would delay the callbacks that later tests wait for)


def test_hanging_receiver_never_delays_answers(api, cb, receiver):
    """docs/protocol.md §11.3: after-event callbacks: the API answer never waits for them, even
    when the receiver takes 10 s."""
    app = cb["cb_hang"]
    u, v = fresh(api, app), fresh(api, app)
    calls = [
        ("login", lambda: login(api, app, u, "iPhone")),
        ("login again", lambda: login(api, app, u, "iPhone")),
        ("login v", lambda: login(api, app, v, "Web")),
        ("disconnect", lambda: disconnect(api, app, u, "iPhone")),
        ("portrait_set", lambda: portrait_set(api, app, v, [(NICK, "slow")])),
        ("logout", lambda: logout(api, app, u)),
        ("kick", lambda: api.kick(app, v)),
    ]
    for name, call in calls:
        t0 = time.monotonic()
        r = call()
        elapsed = time.monotonic() - t0
        assert r.code == 0, (name, r)
        assert elapsed < FAST, f"{name} took {elapsed:.2f}s with a hanging receiver"
    # the callbacks were sent (the receiver saw at least the first one)
    events(receiver, "hang", u, 1)
