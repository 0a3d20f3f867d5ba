"""§9.1 step 9 and §9.6: body size, JSON parsing, call-level 70402 / 60015, Content-Type."""

import json

import pytest
from contract_support import assert_envelope, uid

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def ids(n):
    return [uid() for _ in range(n)]


# ---------------------------------------------------------------- size


def _padded_check_body(total: int) -> bytes:
    head = json.dumps({"CheckItem": [{"UserID": "sizeprobe"}]}).encode()
    return head + b" " * (total - len(head))


def test_body_exactly_1mib_accepted(api, dev):
    body = _padded_check_body(MIB)
    assert len(body) == MIB
    r = api.post("account_check", body, dev)
    assert r.code == 0
    assert r["ResultItem"][0]["UserID"] == "sizeprobe"


def test_body_over_1mib_60008(api, dev):
    r = api.post("account_check", _padded_check_body(MIB + 1), dev)
    assert r.code == 60008


def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_chunked_body_accepted(api, dev, server):
    """A body sent with Transfer-Encoding: chunked (no Content-Length) is read like any other."""
    u = uid()
    body = json.dumps({"UserID": u}).encode()
    url = api.url("account_import", dev)
    resp = api.client.post(url, content=_chunks(body, 4))
    assert_envelope(resp)
    assert resp.json()["ErrorCode"] == 0
    assert api.status(dev, u) == "Imported"


def test_chunked_body_over_1mib_60008(api, dev):
    """The 1 MiB limit applies to the body, not only to a Content-Length header."""
    url = api.url("account_check", dev)
    resp = api.client.post(url, content=_chunks(_padded_check_body(MIB + 100)))
    assert_envelope(resp)
    assert resp.json()["ErrorCode"] == 60008


def test_oversized_invalid_json_is_60008_not_60003(api, dev):
    r = api.post("account_check", b"{" * (MIB + 10), dev)
    assert r.code == 60008


# ---------------------------------------------------------------- 60003


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="garbage"),
        pytest.param(b'{"CheckItem": [{"UserID": "a"}]', id="truncated"),
        pytest.param(b"{'CheckItem': []}", id="single_quotes"),
        pytest.param(b'{"CheckItem": [{"UserID": "\xff\xfe"}]}', id="non_utf8"),
        pytest.param(b'{"CheckItem": [{"UserID": "a"}]} trailing', id="trailing_garbage"),
    ],
)
@pytest.mark.parametrize("command", ["account_check", "account_import"])
def test_unparseable_body_60003(api, dev, raw, command):
    assert api.post(command, raw, dev).code == 60003


# ---------------------------------------------------------------- Content-Type is not required


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Content-Type": "text/plain"}, id="text_plain"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="form"),
        pytest.param({"Content-Type": "application/json; charset=utf-8"}, id="json_charset"),
    ],
)
def test_no_particular_content_type_required(api, dev, headers):
    u = uid()
    r = api.post("account_import", json.dumps({"UserID": u}).encode(), dev, headers=headers)
    assert r.code == 0
    assert api.status(dev, u) == "Imported"


def test_request_without_content_type_header_really_has_none(api, dev, server):
    """Guard for the test above: httpx sends no Content-Type for raw content."""
    req = api.client.build_request("POST", f"{server.base_url}/x", content=b"{}")
    assert "content-type" not in req.headers


# ---------------------------------------------------------------- call-level 70402


def _many(n):
    return [{"UserID": u} for u in ids(n)]


BAD_70402 = [
    # JSON but not an object
    ("account_import", b"[]"),
    ("account_import", b'"UserID"'),
    ("account_import", b"42"),
    ("account_import", b"null"),
    ("kick", b"true"),
    ("account_check", [{"UserID": "a"}]),
    # required field missing
    ("account_import", {}),
    ("account_import", {"Nick": "only nick"}),
    ("kick", {}),
    ("multiaccount_import", {}),
    ("account_delete", {}),
    ("account_check", {}),
    ("account_check", {"checkitem": [{"UserID": "a"}]}),  # names are case-sensitive
    # wrong type of the top-level field
    ("account_import", {"UserID": True}),
    ("account_import", {"UserID": None}),
    ("account_import", {"UserID": ["a"]}),
    ("account_import", {"UserID": {"a": 1}}),
    ("account_import", {"UserID": "ok1", "Nick": 5}),
    ("account_import", {"UserID": "ok2", "FaceUrl": ["http://x"]}),
    ("account_import", {"UserID": "ok3", "Nick": None}),
    ("kick", {"UserID": None}),
    ("kick", {"UserID": False}),
    ("multiaccount_import", {"Accounts": "a"}),
    ("multiaccount_import", {"Accounts": {"a": 1}}),
    ("multiaccount_import", {"AccountList": {"UserID": "a"}}),
    ("account_delete", {"DeleteItem": {"UserID": "a"}}),
    ("account_check", {"CheckItem": "a"}),
    # empty array
    ("multiaccount_import", {"Accounts": []}),
    ("multiaccount_import", {"AccountList": []}),
    ("account_delete", {"DeleteItem": []}),
    ("account_check", {"CheckItem": []}),
    # items that are not objects / lack UserID / have a non-string, non-number UserID
    ("account_check", {"CheckItem": ["a"]}),
    ("account_check", {"CheckItem": [{}]}),
    ("account_check", {"CheckItem": [{"userid": "a"}]}),
    ("account_check", {"CheckItem": [{"Identifier": "a"}]}),  # alias only for import/kick
    ("account_delete", {"DeleteItem": [{"Identifier": "a"}]}),
    ("multiaccount_import", {"AccountList": [{"Identifier": "a"}]}),
    ("account_import", {"Identifier": None}),
    ("kick", {"Identifier": ["a"]}),
    ("account_check", {"CheckItem": [{"UserID": "fine"}, {"UserID": None}]}),
    ("account_check", {"CheckItem": [{"UserID": True}]}),
    ("account_delete", {"DeleteItem": [["a"]]}),
    ("account_delete", {"DeleteItem": [{"Nick": "a"}]}),
    ("account_delete", {"DeleteItem": [{"UserID": {"x": 1}}]}),
    ("multiaccount_import", {"Accounts": ["fine", None]}),
    ("multiaccount_import", {"Accounts": [True]}),
    ("multiaccount_import", {"Accounts": [["a"]]}),
    ("multiaccount_import", {"AccountList": ["a"]}),
    ("multiaccount_import", {"AccountList": [{"Nick": "no id"}]}),
    ("multiaccount_import", {"AccountList": [{"UserID": False}]}),
    # both formats at once (§9.3)
    ("multiaccount_import", {"Accounts": ["a"], "AccountList": [{"UserID": "b"}]}),
]


@pytest.mark.parametrize("command,body", BAD_70402, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD_70402)])
def test_call_level_70402(api, dev, command, body):
    assert api.post(command, body, dev).code == 70402


@pytest.mark.parametrize(
    "command,key,wrap",
    [
        ("multiaccount_import", "Accounts", lambda u: u),
        ("multiaccount_import", "AccountList", lambda u: {"UserID": u}),
        ("account_delete", "DeleteItem", lambda u: {"UserID": u}),
        ("account_check", "CheckItem", lambda u: {"UserID": u}),
    ],
)
def test_more_than_100_items_70402_and_100_ok(api, dev, command, key, wrap):
    users = ids(101)
    r = api.post(command, {key: [wrap(u) for u in users]}, dev)
    assert r.code == 70402
    # nothing of the refused call was applied
    if command == "multiaccount_import":
        assert set(api.statuses(dev, users[:100])) == {"NotImported"}
    r = api.post(command, {key: [wrap(u) for u in users[:100]]}, dev)
    assert r.code == 0


def test_both_formats_import_nothing(api, dev):
    a, b = uid(), uid()
    assert api.post("multiaccount_import", {"Accounts": [a], "AccountList": [{"UserID": b}]}, dev).code == 70402
    assert api.statuses(dev, [a, b]) == ["NotImported", "NotImported"]


def test_call_level_70402_imports_nothing_of_the_batch(api, dev):
    a = uid()
    r = api.post("multiaccount_import", {"Accounts": [a, None]}, dev)
    assert r.code == 70402
    assert api.status(dev, a) == "NotImported"


# ---------------------------------------------------------------- 60015: a number instead of a string

NUMERIC_60015 = [
    ("account_import", {"UserID": 12345}),
    ("account_import", {"Identifier": 12345}),
    ("account_import", {"UserID": 1.5}),
    ("kick", {"UserID": 42}),
    ("kick", {"Identifier": 42}),
    ("multiaccount_import", {"Accounts": ["fine", 7]}),
    ("multiaccount_import", {"AccountList": [{"UserID": 7}]}),
    ("account_delete", {"DeleteItem": [{"UserID": 7}]}),
    ("account_check", {"CheckItem": [{"UserID": "fine"}, {"UserID": 0}]}),
    ("account_check", {"CheckItem": [{"UserID": -3}]}),
]


@pytest.mark.parametrize("command,body", NUMERIC_60015, ids=[f"{c}-{i}" for i, (c, _) in enumerate(NUMERIC_60015)])
def test_numeric_userid_60015(api, dev, command, body):
    assert api.post(command, body, dev).code == 60015


def test_numeric_userid_in_batch_imports_nothing(api, dev):
    a = uid()
    assert api.post("multiaccount_import", {"Accounts": [a, 99]}, dev).code == 60015
    assert api.status(dev, a) == "NotImported"


# ---------------------------------------------------------------- misc


def test_unknown_extra_fields_are_ignored(api, dev):
    u = uid()
    r = api.post("account_import", {"UserID": u, "Type": 0, "Extra": {"x": [1]}}, dev)
    assert r.code == 0
    assert api.status(dev, u) == "Imported"


def test_body_validation_before_pro_delete_rule(api, pro):
    """Step 9 before command rules: an empty DeleteItem on a pro app is 70402, not 71000."""
    assert api.post("account_delete", {"DeleteItem": []}, pro).code == 70402
    assert api.post("account_delete", b"", pro).code == 60003
