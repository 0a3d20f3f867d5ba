"""§4.5 / §9.1 step 6 (70005), §9.4 (kick of an unknown UserID -> 70107), §9.6 (same-second rule)."""

import time

import pytest
from contract_support import ADMIN, build_sig, sleep_past_second, uid, wait_for_second_start

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "probe"}]}


def call_as(api, app, identifier, sig):
    return api.post("account_check", BODY, app, identifier=identifier, usersig=sig)


def test_kick_imported_user_ok(api, dev):
    u = uid()
    assert api.import_one(dev, u).code == 0
    r = api.kick(dev, u)
    assert r.code == 0
    # kick does not delete the account
    assert api.status(dev, u) == "Imported"


def test_kick_unknown_user_70107(api, dev):
    assert api.kick(dev, uid("ghost")).code == 70107


def test_kick_deleted_user_70107(api, dev):
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.delete(dev, [u])["ResultItem"][0]["ResultCode"] == 0
    assert api.kick(dev, u).code == 70107


def test_kick_accepts_identifier_alias(api, dev):
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.post("kick", {"Identifier": u}, dev).code == 0
    assert api.post("kick", {"Identifier": uid("ghost")}, dev).code == 70107


def test_kick_userid_wins_over_identifier(api, dev):
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.post("kick", {"UserID": u, "Identifier": uid("ghost")}, dev).code == 0
    assert api.post("kick", {"UserID": uid("ghost"), "Identifier": u}, dev).code == 70107


def test_kick_is_case_sensitive(api, dev):
    u = "Kick" + uid()
    assert api.import_one(dev, u).code == 0
    assert api.kick(dev, u.lower()).code == 70107


def test_kick_admin_never_imported_ok(api, apps):
    """Admins are accounts too (§9.4), so kicking one that was never imported is OK."""
    assert api.kick(apps["kick"], "k6").code == 0


def test_kick_invalidates_old_sig_of_admin_70005(api, apps):
    app = apps["kick"]
    old = build_sig(app.key, "k1", app.sdkappid, t=int(time.time()) - 5)
    assert call_as(api, app, "k1", old).code == 0
    t_kick = time.time()
    assert api.kick(app, "k1").code == 0
    assert call_as(api, app, "k1", old).code == 70005
    # a sig signed in a later second works again
    sleep_past_second(time.time())
    assert call_as(api, app, "k1", app.sig("k1")).code == 0
    assert int(time.time()) > int(t_kick)


def test_sig_signed_in_same_second_as_kick_refused(api, apps):
    """§9.6: TLS.time has whole seconds, so a sig signed in the kick's second is refused too."""
    app = apps["kick"]
    for admin in ("k2", "k3", "k4"):
        wait_for_second_start(0.3)
        t0 = time.time()
        assert api.kick(app, admin).code == 0
        t1 = time.time()
        if int(t0) == int(t1):
            break
    else:
        pytest.fail("could not keep a kick inside one wall-clock second")
    same_second = build_sig(app.key, admin, app.sdkappid, t=int(t0))
    assert call_as(api, app, admin, same_second).code == 70005
    sleep_past_second(t1)
    later = build_sig(app.key, admin, app.sdkappid, t=int(time.time()))
    assert int(time.time()) > int(t1)
    assert call_as(api, app, admin, later).code == 0


def test_kick_of_other_identifier_does_not_affect_caller(api, apps):
    """Kicking k5 leaves the sigs of other admins alone (administrator's old sig still works)."""
    app = apps["kick"]
    old_admin = build_sig(app.key, ADMIN, app.sdkappid, t=int(time.time()) - 5)
    assert api.kick(app, "k5").code == 0
    assert call_as(api, app, ADMIN, old_admin).code == 0


def test_expired_checked_before_kick(api, apps):
    """Step 6 order: 70001 (expired) before 70005 (kicked)."""
    app = apps["kick"]
    assert api.kick(app, "k6").code == 0
    sig = build_sig(app.key, "k6", app.sdkappid, t=int(time.time()) - 1000, expire=10)
    assert call_as(api, app, "k6", sig).code == 70001


def test_kicked_non_admin_70005_before_70403(api, dev):
    """A kicked (non-admin) user with an old sig fails at step 6 (70005), before the admin
    check; with a fresh sig from a later second it reaches step 7 (70403)."""
    u = uid()
    assert api.import_one(dev, u).code == 0
    old = build_sig(dev.key, u, dev.sdkappid, t=int(time.time()) - 5)
    assert call_as(api, dev, u, old).code == 70403
    t = time.time()
    assert api.kick(dev, u).code == 0
    assert call_as(api, dev, u, old).code == 70005
    sleep_past_second(t)
    assert call_as(api, dev, u, dev.sig(u)).code == 70403


def test_kick_is_per_app(api, dev, dev2):
    """Kicking u in dev2 does not invalidate u's old sig in dev."""
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.import_one(dev2, u).code == 0
    old_dev = build_sig(dev.key, u, dev.sdkappid, t=int(time.time()) - 5)
    assert api.kick(dev2, u).code == 0
    assert call_as(api, dev, u, old_dev).code == 70403  # not 70005


def test_kick_body_validated_before_existence(api, dev):
    """§9.6: body validation (step 9) comes before 70107."""
    assert api.post("kick", {"UserID": 12345}, dev).code == 60015
    assert api.post("kick", {}, dev).code == 70402
