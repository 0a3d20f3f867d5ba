"""§4.2-§4.4 and §9.3/§9.6: batch semantics and exact result shapes."""

import pytest
from contract_support import ADMIN, uid

pytestmark = pytest.mark.slow

NOT_EXIST = "Err_TLS_PT_Open_Login_Account_Not_Exist"


# ---------------------------------------------------------------- multiaccount_import


def test_multi_import_old_format(api, dev):
    users = [uid() for _ in range(5)]
    r = api.multi_import(dev, users)
    assert r.code == 0
    assert r["FailAccounts"] == []
    assert api.statuses(dev, users) == ["Imported"] * 5


def test_multi_import_new_format(api, dev):
    a, b = uid(), uid()
    r = api.post(
        "multiaccount_import",
        {"AccountList": [{"UserID": a, "Nick": "Nick_001", "FaceUrl": "http://www.qq.com"}, {"UserID": b}]},
        dev,
    )
    assert r.code == 0
    assert r["FailAccounts"] == []
    assert api.statuses(dev, [a, b]) == ["Imported", "Imported"]


def test_fail_accounts_always_present_and_is_list_of_strings(api, dev):
    r = api.multi_import(dev, [uid()])
    assert "FailAccounts" in r.data and r["FailAccounts"] == []
    r = api.multi_import(dev, ["", uid()])
    assert isinstance(r["FailAccounts"], list) and all(isinstance(x, str) for x in r["FailAccounts"])


def test_multi_import_duplicates_are_not_failures(api, dev):
    a, b = uid(), uid()
    r = api.multi_import(dev, [a, b, a, a])
    assert r.code == 0
    assert r["FailAccounts"] == []
    assert api.statuses(dev, [a, b]) == ["Imported", "Imported"]


def test_multi_import_existing_accounts_are_not_failures(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    r = api.multi_import(dev, [a, uid()])
    assert r.code == 0 and r["FailAccounts"] == []


def test_multi_import_admin_is_not_failure(api, dev):
    r = api.multi_import(dev, [ADMIN, "admin2"])
    assert r.code == 0 and r["FailAccounts"] == []


def test_fail_accounts_order_and_once_each(api, dev):
    """§9.6: each failed UserID once, in the order of its first failure."""
    long1 = "L" + "x" * 40
    long2 = "M" + "y" * 40
    good = uid()
    r = api.multi_import(dev, [long2, good, "", long1, long2, "", long1])
    assert r.code == 0
    assert r["FailAccounts"] == [long2, "", long1]
    assert api.status(dev, good) == "Imported"


def test_all_items_invalid_is_still_ok(api, dev):
    """§9.3: per-item failures; the call is OK/0 with everything in FailAccounts."""
    r = api.multi_import(dev, ["", "z" * 33])
    assert r.code == 0
    assert r["FailAccounts"] == ["", "z" * 33]


def test_account_list_invalid_userid_per_item(api, dev):
    good = uid()
    r = api.post("multiaccount_import", {"AccountList": [{"UserID": "q" * 33}, {"UserID": good}]}, dev)
    assert r.code == 0
    assert r["FailAccounts"] == ["q" * 33]
    assert api.status(dev, good) == "Imported"


def test_batch_of_100_then_one_more_developer_has_no_cap(api, dev):
    """§9.4: developer edition has no account cap."""
    first = [uid() for _ in range(100)]
    assert api.multi_import(dev, first)["FailAccounts"] == []
    second = [uid() for _ in range(100)]
    assert api.multi_import(dev, second)["FailAccounts"] == []
    last = uid()
    assert api.import_one(dev, last).code == 0
    assert set(api.statuses(dev, second)) == {"Imported"}


# ---------------------------------------------------------------- account_check


def test_check_shape_and_order(api, dev):
    a, b = uid(), uid()
    assert api.import_one(dev, a).code == 0
    r = api.check(dev, [a, b])
    assert r.code == 0
    items = r["ResultItem"]
    assert isinstance(items, list) and len(items) == 2
    for item in items:
        assert {"UserID", "ResultCode", "ResultInfo", "AccountStatus"} <= set(item)
        assert type(item["ResultCode"]) is int and isinstance(item["ResultInfo"], str)
    assert items[0] == {**items[0], "UserID": a, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "Imported"}
    assert items[1] == {**items[1], "UserID": b, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "NotImported"}


def test_check_mirrors_request_including_duplicates(api, dev):
    a, b = uid(), uid()
    assert api.import_one(dev, b).code == 0
    r = api.check(dev, [a, b, a, b, a])
    assert [i["UserID"] for i in r["ResultItem"]] == [a, b, a, b, a]
    assert [i["AccountStatus"] for i in r["ResultItem"]] == ["NotImported", "Imported"] * 2 + ["NotImported"]


def test_check_100_items_in_order(api, dev):
    users = [uid() for _ in range(100)]
    assert api.multi_import(dev, users[::2])["FailAccounts"] == []
    r = api.check(dev, users)
    assert [i["UserID"] for i in r["ResultItem"]] == users
    assert [i["AccountStatus"] for i in r["ResultItem"]] == ["Imported", "NotImported"] * 50


def test_check_ignores_extra_item_fields(api, dev):
    a = uid()
    r = api.post("account_check", {"CheckItem": [{"UserID": a, "Other": 1}]}, dev)
    assert r.code == 0 and r["ResultItem"][0]["UserID"] == a


# ---------------------------------------------------------------- account_delete


def test_delete_shape(api, dev):
    a, b = uid(), uid()
    assert api.import_one(dev, a).code == 0
    r = api.delete(dev, [a, b])
    assert r.code == 0
    items = r["ResultItem"]
    assert len(items) == 2
    for item in items:
        assert {"ResultCode", "ResultInfo", "UserID"} <= set(item)
        assert type(item["ResultCode"]) is int and isinstance(item["ResultInfo"], str)
    assert (items[0]["UserID"], items[0]["ResultCode"], items[0]["ResultInfo"]) == (a, 0, "")
    assert (items[1]["UserID"], items[1]["ResultCode"], items[1]["ResultInfo"]) == (b, 70107, NOT_EXIST)
    assert api.statuses(dev, [a, b]) == ["NotImported", "NotImported"]


def test_delete_all_missing_is_still_ok(api, dev):
    users = [uid(), uid()]
    r = api.delete(dev, users)
    assert r.code == 0
    assert [(i["ResultCode"], i["ResultInfo"]) for i in r["ResultItem"]] == [(70107, NOT_EXIST)] * 2


def test_delete_duplicate_first_wins_second_70107(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    r = api.delete(dev, [a, a])
    assert [(i["UserID"], i["ResultCode"]) for i in r["ResultItem"]] == [(a, 0), (a, 70107)]
    assert r["ResultItem"][1]["ResultInfo"] == NOT_EXIST


def test_delete_processed_in_request_order(api, dev):
    users = [uid() for _ in range(4)]
    assert api.multi_import(dev, users[1:3])["FailAccounts"] == []
    r = api.delete(dev, users)
    assert [i["UserID"] for i in r["ResultItem"]] == users
    assert [i["ResultCode"] for i in r["ResultItem"]] == [70107, 0, 0, 70107]


def test_delete_invalid_userid_per_item_70402(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    r = api.delete(dev, ["x" * 33, a, ""])
    assert r.code == 0
    codes = [i["ResultCode"] for i in r["ResultItem"]]
    assert codes == [70402, 0, 70402]
    assert r["ResultItem"][0]["ResultInfo"].strip() not in ("", NOT_EXIST)
    assert r["ResultItem"][2]["ResultInfo"].strip() not in ("", NOT_EXIST)
    assert api.status(dev, a) == "NotImported"


def test_delete_then_reimport(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    assert api.delete(dev, [a])["ResultItem"][0]["ResultCode"] == 0
    assert api.status(dev, a) == "NotImported"
    assert api.import_one(dev, a).code == 0
    assert api.status(dev, a) == "Imported"


def test_delete_is_case_sensitive(api, dev):
    a = "Del" + uid()
    assert api.import_one(dev, a).code == 0
    r = api.delete(dev, [a.lower()])
    assert r["ResultItem"][0]["ResultCode"] == 70107
    assert api.status(dev, a) == "Imported"


# ---------------------------------------------------------------- admins


@pytest.mark.parametrize("admin", [ADMIN, "admin2", "管理员"])
def test_admins_are_imported(api, dev, admin):
    r = api.check(dev, [admin])
    assert r["ResultItem"][0]["AccountStatus"] == "Imported"


def test_admin_cannot_be_deleted_per_item_70402(api, dev):
    a = uid()
    assert api.import_one(dev, a).code == 0
    r = api.delete(dev, [ADMIN, a, "admin2"])
    assert r.code == 0
    items = r["ResultItem"]
    assert [i["ResultCode"] for i in items] == [70402, 0, 70402]
    assert items[0]["ResultInfo"].strip() not in ("", NOT_EXIST)
    assert api.statuses(dev, [ADMIN, "admin2"]) == ["Imported", "Imported"]
    # the admin still works as caller
    assert api.check(dev, [a]).code == 0


def test_admin_reimport_is_ok(api, dev):
    assert api.import_one(dev, ADMIN).code == 0
    assert api.status(dev, ADMIN) == "Imported"


def test_unicode_userid_in_results(api, dev):
    a = "用户" + uid()[:10]
    assert api.import_one(dev, a).code == 0
    r = api.check(dev, [a])
    assert r["ResultItem"][0]["UserID"] == a
