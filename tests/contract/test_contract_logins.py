"""docs/protocol.md §11.2: simulated logins (`/_timserver/login`, `/logout`, `/disconnect`),
`kick` and `account_delete` on login state, and the CLI's `timserver login|logout|disconnect`.

State is read back through `v4/openim/query_online_status` (docs/protocol.md §11.1). Apps of
this module (created at run time): `lg` (two admins) and `lg2`; one test starts its own server
with `--no-emulator`.
"""

import time

import pytest
from contract_logins_support import (
    DESKTOP,
    MOBILE,
    PLATFORMS,
    cli,
    cli_ok,
    detail,
    disconnect,
    ext,
    live,
    login,
    logout,
    new_apps,
    ok,
    online,
    state,
)
from contract_support import (
    ADMIN,
    App,
    Reply,
    ServerProcess,
    build_sig,
    cli_create_app,
    sleep_past_second,
    sqlite_url,
    uid,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def apps13(server, api):
    return new_apps(
        server,
        api,
        [
            App("lg", 1400001311, "developer", [ADMIN, "lgadmin"]),
            App("lg2", 1400001312, "developer", [ADMIN]),
        ],
    )


@pytest.fixture(scope="module")
def lg(apps13):
    return apps13["lg"]


def fresh(api, app, prefix="l"):
    u = uid(prefix)
    assert api.import_one(app, u).code == 0
    return u


# ------------------------------------------------------------------ login


def test_admin_login_makes_device_online(api, lg):
    """docs/protocol.md §11.2: POST /_timserver/login {UserID, Platform}, signed by an admin:
    that device becomes Online."""
    u = fresh(api, lg)
    assert state(api, lg, u) == "Offline"
    r = login(api, lg, u, "Web")
    assert r.code == 0
    assert state(api, lg, u) == "Online"
    assert detail(api, lg, u) == {"Web": "Online"}


def test_any_admin_of_the_app_may_log_a_user_in(api, lg):
    """docs/protocol.md §11.2: signed by an admin of the app (any of its admins)."""
    u = fresh(api, lg)
    assert login(api, lg, u, "Mac", identifier="lgadmin").code == 0
    assert detail(api, lg, u) == {"Mac": "Online"}


def test_login_on_every_platform(api, lg):
    """docs/protocol.md §11.1/§11.2: one device per Platform (iPhone, Android, Web, PC, iPad,
    Mac), each Online."""
    u = fresh(api, lg)
    for p in PLATFORMS:
        assert login(api, lg, u, p).code == 0, p
    assert detail(api, lg, u) == {p: "Online" for p in PLATFORMS}


def test_user_logs_in_with_own_usersig(api, lg):
    """docs/protocol.md §11.2: the user itself may sign (identifier = the UserID, its own
    UserSig), as Tencent's login would."""
    u = fresh(api, lg)
    r = login(api, lg, u, "Android", identifier=u, usersig=lg.sig(u))
    assert r.code == 0
    assert detail(api, lg, u) == {"Android": "Online"}


def test_another_users_sig_cannot_log_someone_in(api, lg):
    """docs/protocol.md §11.2: only an admin or the user itself may sign; another (non-admin)
    user's own valid UserSig is refused as a non-admin call (70403), and nothing changes."""
    u, v = fresh(api, lg), fresh(api, lg)
    r = login(api, lg, u, "Web", identifier=v, usersig=lg.sig(v))
    assert r.code == 70403
    assert state(api, lg, u) == "Offline"


def test_login_not_imported_70107(api, lg):
    """docs/protocol.md §11.2: a UserID that is not imported -> 70107, signed by an admin or by
    itself."""
    ghost = uid("ghost")
    assert login(api, lg, ghost, "Web").code == 70107
    assert login(api, lg, ghost, "Web", identifier=ghost, usersig=lg.sig(ghost)).code == 70107
    assert online(api, lg, [ghost]).code == 70107  # still not imported, no state made


def test_kicked_own_sig_70005_then_fresh_sig_works(api, lg):
    """docs/protocol.md §11.2 with §5.6: after a kick the user's old UserSig can no longer log
    in (70005); a UserSig signed in a later second can."""
    u = fresh(api, lg)
    old = build_sig(lg.key, u, lg.sdkappid, t=int(time.time()) - 5)
    assert login(api, lg, u, "iPhone", identifier=u, usersig=old).code == 0
    assert state(api, lg, u) == "Online"
    t_kick = time.time()
    assert api.kick(lg, u).code == 0
    assert state(api, lg, u) == "Offline"
    r = login(api, lg, u, "iPhone", identifier=u, usersig=old)
    assert r.code == 70005
    assert state(api, lg, u) == "Offline"
    sleep_past_second(t_kick)
    r = login(api, lg, u, "iPhone", identifier=u, usersig=lg.sig(u))
    assert r.code == 0
    assert state(api, lg, u) == "Online"


@pytest.mark.parametrize(
    "make,code",
    [
        pytest.param(
            lambda a, u: build_sig(a.key, u, a.sdkappid, t=int(time.time()) - 1000, expire=10), 70001, id="expired"
        ),
        pytest.param(lambda a, u: build_sig("0" * 64, u, a.sdkappid), 70009, id="wrong_key"),
        pytest.param(lambda a, u: build_sig(a.key, "someone-else", a.sdkappid), 70013, id="identifier_mismatch"),
        pytest.param(lambda a, u: build_sig(a.key, u, 1400999999), 70014, id="sdkappid_mismatch"),
        pytest.param(lambda a, u: "not*a*valid*sig", 70003, id="undecodable"),
    ],
)
def test_own_sig_checked_like_a_v4_call(api, lg, make, code):
    """docs/protocol.md §11.2: a user's own UserSig meets every UserSig check of §4 step 6."""
    u = fresh(api, lg)
    r = login(api, lg, u, "Web", identifier=u, usersig=make(lg, u))
    assert r.code == code
    assert state(api, lg, u) == "Offline"


@pytest.mark.parametrize(
    "body,code",
    [
        pytest.param(b"{", 60003, id="bad_json"),
        pytest.param(b'{"Platform": "Web"}', 70402, id="no_userid"),
        pytest.param(b'{"UserID": "USER"}', 70402, id="no_platform"),
        pytest.param(b'{"UserID": "USER", "Platform": "Windows"}', 70402, id="unknown_platform"),
        pytest.param(b'{"UserID": "USER", "Platform": "iphone"}', 70402, id="platform_case"),
        pytest.param(b'{"UserID": "USER", "Platform": 1}', 70402, id="platform_number"),
    ],
)
def test_login_bad_body(api, lg, body, code):
    """docs/protocol.md §11.2 with docs/emulator.md (control endpoints): a bad body gets a
    catalogue code (60003 bad JSON, 70402 a bad or missing field) and logs nobody in."""
    u = fresh(api, lg)
    r = ext(api, "login", body.replace(b"USER", u.encode()), lg)
    assert r.code == code
    assert state(api, lg, u) == "Offline"


def test_second_login_same_platform_replaces_device(api, lg):
    """docs/protocol.md §11.2: a second login on the same Platform replaces the first device
    (one device per platform, still Online)."""
    u = fresh(api, lg)
    ok(login(api, lg, u, "iPhone"))
    ok(login(api, lg, u, "Web"))
    ok(login(api, lg, u, "iPhone"))
    assert detail(api, lg, u) == {"iPhone": "Online", "Web": "Online"}


def test_login_state_is_per_app(api, apps13):
    """docs/protocol.md §11.2: a login in one app leaves the same UserID of another app alone."""
    a, b = apps13["lg"], apps13["lg2"]
    u = uid("same")
    assert api.import_one(a, u).code == 0
    assert api.import_one(b, u).code == 0
    ok(login(api, a, u, "PC"))
    assert state(api, a, u) == "Online"
    assert state(api, b, u) == "Offline"


# ------------------------------------------------------------------ logout, disconnect


def test_logout_one_platform(api, lg):
    """docs/protocol.md §11.2: POST /_timserver/logout {UserID, Platform}: that device is
    Offline, the others stay."""
    u = fresh(api, lg)
    ok(login(api, lg, u, "iPhone"))
    ok(login(api, lg, u, "Web"))
    assert logout(api, lg, u, "Web").code == 0
    assert live(detail(api, lg, u)) == {"iPhone": "Online"}
    assert state(api, lg, u) == "Online"


def test_logout_without_platform_logs_out_every_device(api, lg):
    """docs/protocol.md §11.2: without Platform, logout covers all devices -> Offline."""
    u = fresh(api, lg)
    for p in ("iPhone", "Android", "PC"):
        ok(login(api, lg, u, p))
    ok(disconnect(api, lg, u, "Android"))  # PushOnline devices are logged out too
    assert logout(api, lg, u).code == 0
    assert state(api, lg, u) == "Offline"
    assert live(detail(api, lg, u)) == {}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_disconnect_mobile_pushonline_others_offline(api, lg, platform):
    """docs/protocol.md §11.2: disconnect -> iPhone / Android / iPad devices become PushOnline,
    the others Offline."""
    u = fresh(api, lg)
    ok(login(api, lg, u, platform))
    assert disconnect(api, lg, u, platform).code == 0
    expected = "PushOnline" if platform in MOBILE else "Offline"
    assert state(api, lg, u) == expected
    assert live(detail(api, lg, u)) == ({platform: "PushOnline"} if platform in MOBILE else {})


def test_disconnect_without_platform_covers_every_device(api, lg):
    """docs/protocol.md §11.2: disconnect without Platform covers all devices: mobile ones
    PushOnline, the others Offline."""
    u = fresh(api, lg)
    for p in PLATFORMS:
        ok(login(api, lg, u, p))
    assert disconnect(api, lg, u).code == 0
    assert live(detail(api, lg, u)) == {p: "PushOnline" for p in MOBILE}
    assert state(api, lg, u) == "PushOnline"
    assert not set(live(detail(api, lg, u))) & set(DESKTOP)


@pytest.mark.parametrize("reason", ["LinkClose", "TimeOut"])
def test_disconnect_reasons_accepted(api, lg, reason):
    """docs/protocol.md §11.2: Reason is LinkClose or TimeOut."""
    u = fresh(api, lg)
    ok(login(api, lg, u, "iPad"))
    assert disconnect(api, lg, u, "iPad", reason=reason).code == 0
    assert state(api, lg, u) == "PushOnline"


def test_login_after_disconnect_is_online_again(api, lg):
    """docs/protocol.md §11.2: a PushOnline device that logs in again is Online."""
    u = fresh(api, lg)
    ok(login(api, lg, u, "Android"))
    ok(disconnect(api, lg, u, "Android"))
    assert state(api, lg, u) == "PushOnline"
    ok(login(api, lg, u, "Android"))
    assert detail(api, lg, u) == {"Android": "Online"}


# ------------------------------------------------------------------ kick and delete


def test_kick_logs_out_every_device(api, lg):
    """docs/protocol.md §11.2: kick logs every device of the UserID out (Offline)."""
    u = fresh(api, lg)
    ok(login(api, lg, u, "iPhone"))
    ok(login(api, lg, u, "Web"))
    ok(login(api, lg, u, "Android"))
    ok(disconnect(api, lg, u, "Android"))
    assert api.kick(lg, u).code == 0
    assert state(api, lg, u) == "Offline"
    assert live(detail(api, lg, u)) == {}
    # the account stays imported
    assert api.status(lg, u) == "Imported"


def test_kick_of_one_user_leaves_others_online(api, lg):
    """docs/protocol.md §11.2: kick logs out the devices of that UserID only."""
    u, v = fresh(api, lg), fresh(api, lg)
    ok(login(api, lg, u, "Web"))
    ok(login(api, lg, v, "Web"))
    assert api.kick(lg, u).code == 0
    r = online(api, lg, [u, v])
    assert [i["Status"] for i in r["QueryResult"]] == ["Offline", "Online"]


def test_delete_removes_login_state(api, lg):
    """docs/protocol.md §11.2: account_delete removes the UserID's login state: it is no
    longer imported (70107 in ErrorList), and imported again it is Offline."""
    u, v = fresh(api, lg), fresh(api, lg)
    ok(login(api, lg, u, "iPhone"))
    ok(login(api, lg, u, "Web"))
    r = api.delete(lg, [u])
    assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0
    r = online(api, lg, [u, v])
    assert r["ErrorList"] == [{"To_Account": u, "ErrorCode": 70107}]
    assert api.import_one(lg, u).code == 0
    assert state(api, lg, u) == "Offline"
    assert live(detail(api, lg, u)) == {}


# ------------------------------------------------------------------ CLI


def test_cli_login_logout_disconnect(api, lg, server):
    """docs/protocol.md §11.2: `timserver login USERID --platform P`, `timserver disconnect
    USERID`, `timserver logout USERID`."""
    u = fresh(api, lg)
    cli_ok(server, lg, "login", u, "--platform", "iPhone", "--sdkappid", str(lg.sdkappid))
    cli_ok(server, lg, "login", u, "--platform", "PC", "--sdkappid", str(lg.sdkappid))
    assert detail(api, lg, u) == {"iPhone": "Online", "PC": "Online"}
    cli_ok(server, lg, "disconnect", u, "--sdkappid", str(lg.sdkappid))
    assert live(detail(api, lg, u)) == {"iPhone": "PushOnline"}
    cli_ok(server, lg, "login", u, "--platform", "Web", "--sdkappid", str(lg.sdkappid))
    assert state(api, lg, u) == "Online"
    cli_ok(server, lg, "logout", u, "--sdkappid", str(lg.sdkappid))
    assert state(api, lg, u) == "Offline"


def test_cli_login_not_imported_fails_cleanly(api, lg, server):
    """docs/protocol.md §11.2: the CLI reports a refused login (70107) with a non-zero exit
    status and no traceback."""
    ghost = uid("ghost")
    p = cli(server, lg, "login", ghost, "--platform", "Web", "--sdkappid", str(lg.sdkappid))
    assert p.returncode != 0
    assert "Traceback" not in p.stdout + p.stderr
    assert online(api, lg, [ghost]).code == 70107


# ------------------------------------------------------------------ emulator only


def test_login_endpoints_absent_without_emulator(tmp_path):
    """docs/protocol.md §11.2: the login endpoints are the emulator's: `serve --no-emulator`
    answers them like an unknown path (60009); query_online_status still answers."""
    app = App("noemu", 1400001351, "developer", [ADMIN])
    db = sqlite_url(str(tmp_path / "noemu.db"))
    cli_create_app(db, app, cwd=str(tmp_path))
    srv = ServerProcess(db, str(tmp_path), "noemu", "--no-emulator", env={"TIMSERVER_EMULATOR": None})
    try:
        from contract_support import Api

        api = Api(srv.base_url)
        try:
            u = uid()
            assert api.import_one(app, u).code == 0
            for path, body in (
                ("login", {"UserID": u, "Platform": "Web"}),
                ("logout", {"UserID": u}),
                ("disconnect", {"UserID": u}),
            ):
                r = ext(api, path, body, app)
                assert isinstance(r, Reply) and r.code == 60009, (path, r)
            assert state(api, app, u) == "Offline"
        finally:
            api.close()
    finally:
        srv.stop()
