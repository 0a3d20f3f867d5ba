"""§9.4: editions (trial cap 70398, pro delete 71000) and §9.6 (admins take no place;
body validation before command rules)."""

import pytest
from contract_support import ADMIN, uid

pytestmark = pytest.mark.slow


def fill(api, app, n):
    """Import n fresh non-admin accounts in batches of <= 100; return them."""
    users = [uid("cap") for _ in range(n)]
    for i in range(0, n, 100):
        r = api.multi_import(app, users[i : i + 100])
        assert r.code == 0
        assert r["FailAccounts"] == [], r
    return users


@pytest.fixture(scope="module")
def full_trial(api, apps):
    """trial_cap1 filled with exactly 100 non-admin accounts (it has 2 admins)."""
    app = apps["trial_cap1"]
    users = fill(api, app, 100)
    return app, users


# ---------------------------------------------------------------- trial


def test_trial_admins_do_not_take_a_place(api, full_trial):
    app, users = full_trial
    assert set(api.statuses(app, users)) == {"Imported"}
    assert api.statuses(app, [ADMIN, "capadmin"]) == ["Imported", "Imported"]


def test_trial_single_import_over_cap_70398(api, full_trial):
    app, _ = full_trial
    u = uid()
    r = api.import_one(app, u)
    assert r.code == 70398
    assert api.status(app, u) == "NotImported"


def test_trial_identifier_alias_over_cap_70398(api, full_trial):
    app, _ = full_trial
    assert api.post("account_import", {"Identifier": uid()}, app).code == 70398


def test_trial_reimport_existing_at_cap_ok(api, full_trial):
    app, users = full_trial
    assert api.import_one(app, users[0]).code == 0
    assert api.import_one(app, ADMIN).code == 0
    r = api.multi_import(app, [ADMIN, "capadmin", users[0], users[99]])
    assert r.code == 0 and r["FailAccounts"] == []


def test_trial_batch_over_cap_goes_to_fail_accounts(api, full_trial):
    app, users = full_trial
    new1, new2 = uid(), uid()
    r = api.multi_import(app, [users[5], new1, users[6], new2])
    assert r["FailAccounts"] == [new1, new2]
    assert api.statuses(app, [new1, new2]) == ["NotImported", "NotImported"]


def test_trial_account_list_over_cap_goes_to_fail_accounts(api, full_trial):
    app, users = full_trial
    new = uid()
    r = api.post("multiaccount_import", {"AccountList": [{"UserID": users[1], "Nick": "n"}, {"UserID": new}]}, app)
    assert r["FailAccounts"] == [new]


def test_trial_body_validation_before_cap(api, full_trial):
    """§9.6: step 9 comes before 70398."""
    app, _ = full_trial
    assert api.post("account_import", {"UserID": 5}, app).code == 60015
    assert api.post("account_import", {}, app).code == 70402
    assert api.import_one(app, "x" * 33).code == 70402


def test_trial_invalid_userid_in_batch_at_cap_is_per_item(api, full_trial):
    app, _ = full_trial
    r = api.multi_import(app, [""])
    assert r["FailAccounts"] == [""]


def test_trial_batch_crossing_cap_processes_in_order(api, apps):
    """98 imported; a batch of 5 new accounts imports the first 2 and fails the last 3."""
    app = apps["trial_cap3"]
    fill(api, app, 98)
    batch = [uid("x") for _ in range(5)]
    r = api.multi_import(app, batch)
    assert r.code == 0
    assert r["FailAccounts"] == batch[2:]
    assert api.statuses(app, batch) == ["Imported", "Imported", "NotImported", "NotImported", "NotImported"]
    assert api.import_one(app, uid()).code == 70398


def test_trial_duplicates_at_last_place_count_once(api, apps):
    """99 imported: [n1, n1, n2] imports n1 once (the 100th place, the repeat is no failure)
    and fails n2."""
    app = apps["trial_cap4"]
    fill(api, app, 99)
    n1, n2 = uid("n"), uid("n")
    r = api.multi_import(app, [n1, n1, n2])
    assert r.code == 0
    assert r["FailAccounts"] == [n2]
    assert api.statuses(app, [n1, n2]) == ["Imported", "NotImported"]


def test_trial_delete_allowed_and_frees_a_place(api, apps):
    app = apps["trial_cap2"]
    users = fill(api, app, 100)
    extra = uid()
    assert api.import_one(app, extra).code == 70398
    r = api.delete(app, [users[0]])
    assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0
    assert api.import_one(app, extra).code == 0
    assert api.import_one(app, uid()).code == 70398


def test_trial_general_delete_ok(api, trial):
    a = uid()
    assert api.import_one(trial, a).code == 0
    r = api.delete(trial, [a])
    assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0
    assert api.status(trial, a) == "NotImported"


# ---------------------------------------------------------------- pro


def test_pro_delete_71000(api, pro):
    a = uid()
    assert api.import_one(pro, a).code == 0
    r = api.delete(pro, [a])
    assert r.code == 71000
    assert api.status(pro, a) == "Imported"


def test_pro_delete_of_missing_account_is_also_71000(api, pro):
    assert api.delete(pro, [uid()]).code == 71000


def test_pro_body_validation_before_71000(api, pro):
    assert api.post("account_delete", {"DeleteItem": [{"UserID": 3}]}, pro).code == 60015
    assert api.post("account_delete", {"DeleteItem": [{}]}, pro).code == 70402


def test_pro_has_no_cap(api, pro):
    users = fill(api, pro, 200)
    assert api.import_one(pro, uid()).code == 0
    assert set(api.statuses(pro, users[100:])) == {"Imported"}


def test_pro_kick_and_check_work(api, pro):
    a = uid()
    assert api.import_one(pro, a).code == 0
    assert api.kick(pro, a).code == 0
    assert api.kick(pro, uid()).code == 70107


# ---------------------------------------------------------------- developer


def test_developer_delete_allowed(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    assert api.delete(dev, [a])["ResultItem"][0]["ResultCode"] == 0
