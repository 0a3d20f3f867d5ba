"""Cross-app isolation: accounts, admin sigs and deletes of one app do not leak into another."""

import pytest
from contract_support import ADMIN, build_sig, uid

pytestmark = pytest.mark.slow


def test_account_imported_in_a_is_not_imported_in_b(api, dev, dev2):
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.status(dev, u) == "Imported"
    assert api.status(dev2, u) == "NotImported"


def test_admin_sig_of_a_does_not_work_for_b(api, dev, dev2):
    """A's administrator sig sent to B: TLS.sdkappid != sdkappid -> 70014."""
    r = api.post("account_check", {"CheckItem": [{"UserID": "x"}]}, dev2, usersig=dev.sig(ADMIN))
    assert r.code == 70014


def test_sig_claiming_b_signed_with_a_key_70009(api, dev, dev2):
    sig = build_sig(dev.key, ADMIN, dev2.sdkappid)
    r = api.post("account_check", {"CheckItem": [{"UserID": "x"}]}, dev2, usersig=sig)
    assert r.code == 70009


def test_delete_in_b_does_not_touch_a(api, dev, dev2):
    u = uid()
    assert api.import_one(dev, u).code == 0
    r = api.delete(dev2, [u])
    assert r["ResultItem"][0]["ResultCode"] == 70107
    assert api.status(dev, u) == "Imported"


def test_same_userid_in_two_apps_independent(api, dev, dev2):
    u = uid()
    assert api.import_one(dev, u).code == 0
    assert api.import_one(dev2, u).code == 0
    assert api.delete(dev, [u])["ResultItem"][0]["ResultCode"] == 0
    assert api.status(dev, u) == "NotImported"
    assert api.status(dev2, u) == "Imported"


def test_admin_of_a_is_not_admin_of_b(api, dev, dev2):
    """admin2 is an admin of dev only: with a valid dev2 sig it gets 70403 in dev2."""
    body = {"CheckItem": [{"UserID": "x"}]}
    r = api.post("account_check", body, dev2, identifier="admin2", usersig=dev2.sig("admin2"))
    assert r.code == 70403
    assert api.status(dev2, "admin2") == "NotImported"
