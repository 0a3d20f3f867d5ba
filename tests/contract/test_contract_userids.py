"""§9.2: UserID validity, case/byte-exact comparison, Identifier alias, Nick/FaceUrl limits."""

import uuid

import pytest
from contract_support import uid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow


def short():
    return uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- valid UserIDs


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: short() + "a" * 24, id="ascii_32_bytes"),
        pytest.param(lambda: short()[:2] + "中" * 10, id="cjk_32_bytes"),  # 2 + 30
        pytest.param(lambda: "😀" * 7 + short()[:4], id="emoji_32_bytes"),  # 28 + 4
        pytest.param(lambda: " " + short() + " ", id="leading_trailing_spaces"),
        pytest.param(lambda: short()[:3] + "!@#$%^&*()+=[]{}|;:'\",.<>/?`~", id="punctuation"),  # 32
        pytest.param(lambda: short()[:1], id="one_char"),
    ],
)
def test_valid_userids_import_and_round_trip(api, dev, make):
    u = make()
    assert len(u.encode("utf-8")) <= 32
    r = api.import_one(dev, u)
    assert r.code == 0, r
    r = api.check(dev, [u])
    item = r["ResultItem"][0]
    assert item["UserID"] == u  # byte for byte, no trimming
    assert item["AccountStatus"] == "Imported"


# ---------------------------------------------------------------- invalid UserIDs

INVALID = [
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: short() + "a" * 25, id="ascii_33_bytes"),
    pytest.param(lambda: "中" * 11, id="cjk_33_bytes_11_chars"),
    pytest.param(lambda: "😀" * 9, id="emoji_36_bytes_9_chars"),
    pytest.param(lambda: short() + "\x00", id="nul"),
    pytest.param(lambda: short() + "\n", id="newline"),
    pytest.param(lambda: "\t" + short(), id="tab"),
    pytest.param(lambda: short() + "\x1f", id="us_0x1f"),
    pytest.param(lambda: short() + "\x7f", id="del_0x7f"),
]


@pytest.mark.parametrize("make", INVALID)
def test_single_import_invalid_userid_70402(api, dev, make):
    u = make()
    assert api.import_one(dev, u).code == 70402


@pytest.mark.parametrize("make", INVALID)
def test_invalid_userid_is_per_item_in_batches(api, dev, make):
    """§9.3: an invalid UserID fails alone (FailAccounts / ResultCode 70402)."""
    bad, good = make(), uid()
    r = api.multi_import(dev, [bad, good])
    assert r.code == 0
    assert r["FailAccounts"] == [bad]
    r = api.check(dev, [bad, good])
    assert r.code == 0
    bad_item, good_item = r["ResultItem"]
    assert bad_item["UserID"] == bad
    assert bad_item["ResultCode"] == 70402
    assert bad_item["ResultInfo"].strip() != ""
    assert bad_item["AccountStatus"] == "NotImported"
    assert (good_item["UserID"], good_item["ResultCode"], good_item["AccountStatus"]) == (good, 0, "Imported")


def test_32_vs_33_bytes_boundary_is_bytes_not_chars(api, dev):
    """'é' is 2 bytes in UTF-8: 16 of them = 32 bytes (valid), 17 = 34 bytes (invalid)."""
    ok = "é" * 16
    bad = "é" * 17
    r = api.check(dev, [ok, bad])
    assert [i["ResultCode"] for i in r["ResultItem"]] == [0, 70402]


# ---------------------------------------------------------------- case / byte exactness


def test_userids_are_case_sensitive(api, dev):
    u = "CaseTest" + short()
    assert api.import_one(dev, u).code == 0
    assert api.statuses(dev, [u, u.lower(), u.upper()]) == ["Imported", "NotImported", "NotImported"]


def test_userids_are_not_trimmed(api, dev):
    core = short()
    assert api.import_one(dev, " " + core).code == 0
    assert api.statuses(dev, [" " + core, core, " " + core + " "]) == ["Imported", "NotImported", "NotImported"]


def test_userids_are_not_unicode_normalised(api, dev):
    core = short()
    nfc = core + "\u00e9"  # é precomposed
    nfd = core + "e\u0301"  # e + combining acute
    assert api.import_one(dev, nfc).code == 0
    assert api.statuses(dev, [nfc, nfd]) == ["Imported", "NotImported"]
    assert api.import_one(dev, nfd).code == 0
    r = api.check(dev, [nfd])
    assert r["ResultItem"][0]["UserID"] == nfd


def test_fullwidth_is_distinct(api, dev):
    core = short()
    assert api.import_one(dev, "A" + core).code == 0
    assert api.status(dev, "Ａ" + core) == "NotImported"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f"),
        min_size=1,
        max_size=20,
    ).filter(lambda s: len(s.encode("utf-8")) <= 24)
)
def test_property_valid_userids_round_trip(api, dev, text):
    """Any non-empty string of <= 32 UTF-8 bytes without control characters is a valid UserID
    and comes back byte for byte."""
    u = uuid.uuid4().hex[:8] + text
    r = api.post("multiaccount_import", {"Accounts": [u]}, dev)
    assert r.code == 0 and r["FailAccounts"] == []
    item = api.check(dev, [u])["ResultItem"][0]
    assert (item["UserID"], item["ResultCode"], item["AccountStatus"]) == (u, 0, "Imported")


# ---------------------------------------------------------------- Identifier alias


def test_identifier_alias_for_account_import(api, dev):
    u = uid()
    assert api.post("account_import", {"Identifier": u}, dev).code == 0
    assert api.status(dev, u) == "Imported"


def test_userid_wins_over_identifier(api, dev):
    a, b = uid(), uid()
    assert api.post("account_import", {"UserID": a, "Identifier": b}, dev).code == 0
    assert api.statuses(dev, [a, b]) == ["Imported", "NotImported"]


def test_userid_wins_even_when_invalid(api, dev):
    """UserID is the one used when both are present: an invalid UserID fails the call."""
    b = uid()
    assert api.post("account_import", {"UserID": "", "Identifier": b}, dev).code == 70402
    assert api.status(dev, b) == "NotImported"


def test_identifier_alias_invalid_string_70402(api, dev):
    assert api.post("account_import", {"Identifier": "x" * 33}, dev).code == 70402


# ---------------------------------------------------------------- re-import


def test_single_import_is_idempotent(api, dev):
    u = uid()
    assert api.import_one(dev, u, Nick="first").code == 0
    assert api.import_one(dev, u, Nick="second", FaceUrl="http://example.invalid/a.png").code == 0
    assert api.import_one(dev, u).code == 0
    r = api.check(dev, [u])
    assert len(r["ResultItem"]) == 1 and r["ResultItem"][0]["AccountStatus"] == "Imported"


# ---------------------------------------------------------------- Nick / FaceUrl limits (40601)


@pytest.mark.parametrize("field", ["Nick", "FaceUrl"])
@pytest.mark.parametrize(
    "value,ok",
    [
        pytest.param("n" * 500, True, id="500_ascii"),
        pytest.param("n" * 501, False, id="501_ascii"),
        pytest.param("中" * 166 + "ab", True, id="500_bytes_168_chars"),
        pytest.param("中" * 167, False, id="501_bytes_167_chars"),
        pytest.param("", True, id="empty"),
    ],
)
def test_single_import_profile_limit_40601(api, dev, field, value, ok):
    u = uid()
    r = api.import_one(dev, u, **{field: value})
    if ok:
        assert r.code == 0
        assert api.status(dev, u) == "Imported"
    else:
        assert r.code == 40601
        assert api.status(dev, u) == "NotImported"


@pytest.mark.parametrize("field", ["Nick", "FaceUrl"])
def test_batch_profile_over_limit_goes_to_failaccounts(api, dev, field):
    a, b, c = uid(), uid(), uid()
    r = api.post(
        "multiaccount_import",
        {"AccountList": [{"UserID": a, field: "x" * 500}, {"UserID": b, field: "中" * 167}, {"UserID": c}]},
        dev,
    )
    assert r.code == 0
    assert r["FailAccounts"] == [b]
    assert api.statuses(dev, [a, b, c]) == ["Imported", "NotImported", "Imported"]


@pytest.mark.parametrize("value", [5, None, ["x"], {"a": "b"}, True])
def test_batch_profile_not_a_string_goes_to_failaccounts(api, dev, value):
    """§9.6: in AccountList a Nick/FaceUrl that is not a string fails that account only."""
    a, b = uid(), uid()
    r = api.post("multiaccount_import", {"AccountList": [{"UserID": a, "Nick": value}, {"UserID": b}]}, dev)
    assert r.code == 0
    assert r["FailAccounts"] == [a]
    assert api.statuses(dev, [a, b]) == ["NotImported", "Imported"]
