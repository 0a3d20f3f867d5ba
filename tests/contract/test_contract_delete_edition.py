"""docs/protocol.md §11.5: deleting accounts by edition — `pro` deletion off (71000) unless
`timserver app allow-delete N on`, 90 days before a UserID deleted from a `pro` app can be
imported again (70399 / FailAccounts), immediate re-import on `developer` and `trial`; deleting
removes the profile and the login state.

Apps of this module (created at run time): `del_toggle` (pro, switched on and off),
`del_pro` (pro, deletion on, its clock moves: UserSigs valid 400 days), `del_dev` (developer),
`del_trial` (trial).
"""

import re
import time

import pytest
from contract_logins_support import (
    DAY,
    IMAGE,
    NICK,
    LongApp,
    cli_ok,
    detail,
    live,
    login,
    new_apps,
    ok,
    online,
    profile_of,
    set_clock,
    state,
)
from contract_support import ADMIN, App, uid

pytestmark = pytest.mark.slow

NOT_EXIST = "Err_TLS_PT_Open_Login_Account_Not_Exist"


def allow_delete(server, app, on: bool):
    cli_ok(server, app, "app", "allow-delete", "--db", server.db, str(app.sdkappid), "on" if on else "off")


def delete_until(api, app, user, code, timeout=10.0):
    """Delete `user` until the call answers `code` (a running server applies an app's new
    setting on its next calls); return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        r = api.delete(app, [user])
        if r.code == code or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@pytest.fixture(scope="module")
def apps13(server, api):
    apps = new_apps(
        server,
        api,
        [
            App("del_toggle", 1400001341, "pro", [ADMIN]),
            LongApp("del_pro", 1400001342, "pro", [ADMIN]),
            App("del_dev", 1400001343, "developer", [ADMIN]),
            App("del_trial", 1400001344, "trial", [ADMIN]),
        ],
    )
    pro = apps["del_pro"]
    allow_delete(server, pro, True)
    probe = uid("probe")
    assert api.import_one(pro, probe).code == 0
    r = delete_until(api, pro, probe, 0)
    assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0, r
    return apps


@pytest.fixture(scope="module")
def pro(apps13):
    return apps13["del_pro"]


def fresh(api, app, n=1, **fields):
    users = [uid("d") for _ in range(n)]
    for u in users:
        assert api.import_one(app, u, **fields).code == 0
    return users


def deleted(api, app, users):
    r = api.delete(app, users)
    assert r.code == 0, r
    assert [i["ResultCode"] for i in r["ResultItem"]] == [0] * len(users), r
    assert set(api.statuses(app, users)) == {"NotImported"}


# ------------------------------------------------------------------ pro: the switch


def test_pro_delete_off_then_on_then_off(api, server, apps13):
    """docs/protocol.md §11.5: on a pro app deletion is off (71000) unless switched on with
    `timserver app allow-delete N on`; `off` switches it off again."""
    app = apps13["del_toggle"]
    a, b = fresh(api, app, 2)
    assert api.delete(app, [a]).code == 71000
    assert api.status(app, a) == "Imported"
    allow_delete(server, app, True)
    r = delete_until(api, app, a, 0)
    assert r.code == 0 and r["ResultItem"] == [{"ResultCode": 0, "ResultInfo": "", "UserID": a}]
    assert api.status(app, a) == "NotImported"
    allow_delete(server, app, False)
    assert delete_until(api, app, b, 71000).code == 71000
    assert api.status(app, b) == "Imported"


def test_pro_delete_on_unknown_userid_is_per_item_70107(api, pro):
    """docs/protocol.md §11.5 with §7.3: with deletion on, a UserID that is not imported is a
    per-item 70107; it was never deleted, so it can be imported at once."""
    ghost = uid("ghost")
    r = api.delete(pro, [ghost])
    assert r.code == 0
    assert r["ResultItem"] == [{"ResultCode": 70107, "ResultInfo": NOT_EXIST, "UserID": ghost}]
    assert api.import_one(pro, ghost).code == 0


# ------------------------------------------------------------------ pro: 90 days before re-import


def test_pro_reimport_within_90_days_single_70399(api, pro):
    """docs/protocol.md §11.5: a UserID deleted from a pro app cannot be imported again for 90
    days: account_import -> 70399 (UserID or Identifier), and the ErrorInfo says when it can."""
    (u,) = fresh(api, pro)
    deleted(api, pro, [u])
    r = api.import_one(pro, u, Nick="back")
    assert r.code == 70399
    assert re.search(r"\d{4}-\d{2}-\d{2}|\b\d{10}\b", r.info), r.info
    assert api.post("account_import", {"Identifier": u}, pro).code == 70399
    assert api.status(pro, u) == "NotImported"
    assert api.kick(pro, u).code == 70107


def test_pro_reimport_within_90_days_batch_fail_accounts(api, pro):
    """docs/protocol.md §11.5: in multiaccount_import (Accounts and AccountList) the deleted
    UserID goes to FailAccounts; the rest of the batch is imported."""
    u1, u2 = fresh(api, pro, 2)
    deleted(api, pro, [u1, u2])
    n1, n2, n3 = uid("n"), uid("n"), uid("n")
    r = api.multi_import(pro, [n1, u1, n2])
    assert r.code == 0
    assert r["FailAccounts"] == [u1]
    r = api.post("multiaccount_import", {"AccountList": [{"UserID": u2, "Nick": "x"}, {"UserID": n3}]}, pro)
    assert r.code == 0
    assert r["FailAccounts"] == [u2]
    assert api.statuses(pro, [n1, u1, n2, u2, n3]) == ["Imported", "NotImported", "Imported", "NotImported", "Imported"]


def test_pro_reimport_after_90_days_of_app_clock(api, pro):
    """docs/protocol.md §11.5: the 90 days are counted by the app's clock (moved with
    POST /_timserver/clock): still refused at +89 days, imported again at +91 days."""
    u, v = fresh(api, pro, 2)
    deleted(api, pro, [u, v])
    try:
        set_clock(api, pro, 89 * DAY)
        assert api.import_one(pro, u).code == 70399
        assert api.multi_import(pro, [v])["FailAccounts"] == [v]
        set_clock(api, pro, 91 * DAY)
        assert api.import_one(pro, u).code == 0
        r = api.multi_import(pro, [v])
        assert r.code == 0 and r["FailAccounts"] == []
        assert api.statuses(pro, [u, v]) == ["Imported", "Imported"]
    finally:
        set_clock(api, pro, 0)


def test_pro_quarantine_is_per_app(api, pro, apps13):
    """docs/protocol.md §11.5: the 90 days bind the UserID in the pro app it was deleted from
    only."""
    dev = apps13["del_dev"]
    (u,) = fresh(api, pro)
    deleted(api, pro, [u])
    assert api.import_one(dev, u).code == 0
    assert api.import_one(pro, u).code == 70399


# ------------------------------------------------------------------ developer, trial


@pytest.mark.parametrize("name", ["del_dev", "del_trial"])
def test_developer_and_trial_reimport_at_once(api, apps13, name):
    """docs/protocol.md §11.5: developer and trial apps delete, and a deleted UserID may be
    imported again at once (single and batch)."""
    app = apps13[name]
    u, v = fresh(api, app, 2)
    deleted(api, app, [u, v])
    assert api.import_one(app, u).code == 0
    r = api.multi_import(app, [v])
    assert r.code == 0 and r["FailAccounts"] == []
    assert api.statuses(app, [u, v]) == ["Imported", "Imported"]


# ------------------------------------------------------------------ what a delete removes


@pytest.mark.parametrize("name", ["del_dev", "del_trial"])
def test_delete_removes_profile_and_login_state(api, apps13, name):
    """docs/protocol.md §11.5: deleting an account also removes its profile and login state:
    imported again, it has no Nick / avatar and is Offline."""
    app = apps13[name]
    (u,) = fresh(api, app, Nick="Ann", FaceUrl="http://a/b.png")
    ok(login(api, app, u, "iPhone"))
    ok(login(api, app, u, "Web"))
    assert state(api, app, u) == "Online"
    deleted(api, app, [u])
    assert online(api, app, [u, ADMIN])["ErrorList"] == [{"To_Account": u, "ErrorCode": 70107}]
    assert api.import_one(app, u).code == 0
    assert profile_of(api, app, u) == {NICK: "", IMAGE: ""}
    assert state(api, app, u) == "Offline"
    assert live(detail(api, app, u)) == {}


def test_pro_delete_removes_profile_and_login_state(api, pro):
    """docs/protocol.md §11.5: on a pro app with deletion on too, the deleted account's login
    state is gone (it is no longer imported)."""
    (u,) = fresh(api, pro, Nick="Pro")
    ok(login(api, pro, u, "Android"))
    deleted(api, pro, [u])
    r = online(api, pro, [u, ADMIN])
    assert r["ErrorList"] == [{"To_Account": u, "ErrorCode": 70107}]
    assert [i["To_Account"] for i in r["QueryResult"]] == [ADMIN]
