"""docs/protocol.md §11.1: `v4/openim/query_online_status` and the legacy `v4/openim/querystate`.

Login state is made with the simulated logins of docs/protocol.md §11.2 (`/_timserver/login`,
`/logout`, `/disconnect`). Apps of this module (created at run time, see
contract_logins_support.new_apps): `onl` for the general rules, `onl_clock` whose clock moves
(the 7-day rule), `onl_rate` with the default rate limits.
"""

import random
import time

import pytest
from contract_logins_support import (
    DAY,
    MOBILE,
    OPENIM,
    PLATFORMS,
    LongApp,
    detail,
    disconnect,
    live,
    login,
    logout,
    new_apps,
    ok,
    online,
    set_clock,
    state,
)
from contract_support import ADMIN, App, build_sig, uid

pytestmark = pytest.mark.slow

PARSE_FAIL = "Fail to Parse json data of body, Please check it"


@pytest.fixture(scope="module")
def apps13(server, api):
    return new_apps(
        server,
        api,
        [
            App("onl", 1400001301, "developer", [ADMIN]),
            LongApp("onl_clock", 1400001302, "developer", [ADMIN]),
            App("onl_rate", 1400001303, "developer", [ADMIN]),
        ],
    )


@pytest.fixture(scope="module")
def onl(apps13):
    return apps13["onl"]


def imported(api, app, n=1, prefix="o"):
    users = [uid(prefix) for _ in range(n)]
    r = api.multi_import(app, users)
    assert r.code == 0 and r["FailAccounts"] == [], r
    return users


def post_raw(api, app, body: bytes, command="query_online_status"):
    return api.post(command, body, app, service=OPENIM)


# ------------------------------------------------------------------ shapes


def test_imported_never_logged_in_is_offline(api, onl):
    """docs/protocol.md §11.1: an imported UserID that never logged in is Offline; without
    IsNeedDetail an item is exactly {To_Account, Status}; ErrorList is present and empty."""
    (u,) = imported(api, onl)
    r = online(api, onl, [u])
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": u, "Status": "Offline"}]
    assert r["ErrorList"] == []


def test_keys_in_tencents_order(api, onl):
    """docs/protocol.md §11.1: the answer's keys in Tencent's order (ActionStatus, ErrorInfo,
    ErrorCode, QueryResult, ErrorList); an item's keys To_Account, Status, Detail."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "Web"))
    r = online(api, onl, [u, uid("ghost")], IsNeedDetail=1)
    order = ["ActionStatus", "ErrorInfo", "ErrorCode", "QueryResult", "ErrorList"]
    assert [k for k in r.data if k in order] == order, list(r.data)
    (item,) = r["QueryResult"]
    assert list(item) == ["To_Account", "Status", "Detail"], item
    assert list(item["Detail"][0]) == ["Platform", "Status"]
    assert list(r["ErrorList"][0]) == ["To_Account", "ErrorCode"]


def test_not_imported_goes_to_error_list(api, onl):
    """docs/protocol.md §11.1: a UserID that is not imported is listed in ErrorList with 70107
    (not in QueryResult); the call is OK/0 because another account was queried."""
    (u,) = imported(api, onl)
    ghost = uid("ghost")
    r = online(api, onl, [ghost, u])
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": u, "Status": "Offline"}]
    assert r["ErrorList"] == [{"To_Account": ghost, "ErrorCode": 70107}]


def test_every_account_failed_is_70107(api, onl):
    """docs/protocol.md §11.1: call-level ErrorCode 70107 when every account failed."""
    ghosts = [uid("ghost"), uid("ghost")]
    r = online(api, onl, ghosts)
    assert r.code == 70107
    assert r.data["ActionStatus"] == "FAIL"
    if "ErrorList" in r.data:
        assert r["ErrorList"] == [{"To_Account": g, "ErrorCode": 70107} for g in ghosts]


def test_invalid_userid_strings_go_to_error_list(api, onl):
    """docs/protocol.md §11.1: invalid UserID strings (empty, over 32 bytes, control
    characters) are not a body error: each goes to ErrorList with 70107."""
    (u,) = imported(api, onl)
    bad = ["", "x" * 33, "a\x01b", "名" * 11]  # 11 x 3 bytes = 33 bytes
    r = online(api, onl, [u, *bad])
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": u, "Status": "Offline"}]
    assert r["ErrorList"] == [{"To_Account": b, "ErrorCode": 70107} for b in bad]


def test_results_in_request_order(api, onl):
    """docs/protocol.md §11.1 with §7.8 (batches in request order): QueryResult follows
    To_Account, ErrorList too."""
    users = imported(api, onl, 6)
    ghosts = [uid("ghost") for _ in range(3)]
    asked = users + ghosts
    random.Random(13).shuffle(asked)
    ok(login(api, onl, users[2], "Android"))
    r = online(api, onl, asked)
    assert [i["To_Account"] for i in r["QueryResult"]] == [a for a in asked if a in users]
    assert [e["To_Account"] for e in r["ErrorList"]] == [a for a in asked if a in ghosts]
    got = {i["To_Account"]: i["Status"] for i in r["QueryResult"]}
    assert got[users[2]] == "Online"
    assert {s for a, s in got.items() if a != users[2]} == {"Offline"}


def test_500_accounts_accepted(api, onl):
    """docs/protocol.md §11.1: To_Account takes up to 500 UserIDs."""
    (u,) = imported(api, onl)
    ghosts = [f"g{i}-{uid()}"[:32] for i in range(499)]
    r = online(api, onl, [u, *ghosts])
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": u, "Status": "Offline"}]
    assert len(r["ErrorList"]) == 499


# ------------------------------------------------------------------ Detail, InstId, aggregate


def test_detail_only_with_is_need_detail(api, onl):
    """docs/protocol.md §11.1: Detail only with IsNeedDetail 1."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "iPhone"))
    for flags in ({}, {"IsNeedDetail": 0}):
        (item,) = online(api, onl, [u], **flags)["QueryResult"]
        assert item == {"To_Account": u, "Status": "Online"}, flags
    (item,) = online(api, onl, [u], IsNeedDetail=1)["QueryResult"]
    assert item["Detail"] == [{"Platform": "iPhone", "Status": "Online"}]


def test_tencents_sample_iphone_pushonline_web_online(api, onl):
    """docs/protocol.md §11.1: the sample answer: an iPhone whose connection dropped
    (PushOnline) and a Web device (Online) -> Online, with both in Detail."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "iPhone"))
    ok(login(api, onl, u, "Web"))
    ok(disconnect(api, onl, u, "iPhone"))
    r = online(api, onl, [u], IsNeedDetail=1)
    (item,) = r["QueryResult"]
    assert item["Status"] == "Online"
    assert sorted(item["Detail"], key=lambda d: d["Platform"]) == [
        {"Platform": "Web", "Status": "Online"},
        {"Platform": "iPhone", "Status": "PushOnline"},
    ]


def test_aggregate_online_then_pushonline_then_offline(api, onl):
    """docs/protocol.md §11.1: Online if any device is Online, else PushOnline if any is, else
    Offline."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "Android"))
    ok(login(api, onl, u, "PC"))
    ok(disconnect(api, onl, u, "Android"))
    assert state(api, onl, u) == "Online"  # PC still Online
    ok(logout(api, onl, u, "PC"))
    assert state(api, onl, u) == "PushOnline"
    assert live(detail(api, onl, u)) == {"Android": "PushOnline"}
    ok(logout(api, onl, u, "Android"))
    assert state(api, onl, u) == "Offline"
    assert live(detail(api, onl, u)) == {}


def test_every_platform_name_in_detail(api, onl):
    """docs/protocol.md §11.1: Platform is one of iPhone, Android, Web, PC, iPad, Mac."""
    (u,) = imported(api, onl)
    for p in PLATFORMS:
        ok(login(api, onl, u, p))
    assert detail(api, onl, u) == {p: "Online" for p in PLATFORMS}
    for p in PLATFORMS:
        ok(disconnect(api, onl, u, p))
    assert live(detail(api, onl, u)) == {p: "PushOnline" for p in MOBILE}
    assert state(api, onl, u) == "PushOnline"


def test_instid_only_with_is_return_instid(api, onl):
    """docs/protocol.md §11.1: with IsReturnInstid 1 each Detail item carries InstId, an
    integer identifying the simulated device, stable while it is logged in."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "iPhone"))
    ok(login(api, onl, u, "Mac"))
    (plain,) = online(api, onl, [u], IsNeedDetail=1)["QueryResult"]
    assert all("InstId" not in d for d in plain["Detail"]), plain
    first = online(api, onl, [u], IsNeedDetail=1, IsReturnInstid=1)["QueryResult"][0]["Detail"]
    again = online(api, onl, [u], IsNeedDetail=1, IsReturnInstid=1)["QueryResult"][0]["Detail"]
    ids = {d["Platform"]: d["InstId"] for d in first}
    assert set(ids) == {"iPhone", "Mac"}
    assert all(type(v) is int for v in ids.values()), first
    assert ids["iPhone"] != ids["Mac"]
    assert {d["Platform"]: d["InstId"] for d in again} == ids


def test_is_return_custom_status_accepted_and_returns_none(api, onl):
    """docs/protocol.md §11.1: IsReturnCustomStatus is accepted; timserver keeps no custom
    status and returns none."""
    (u,) = imported(api, onl)
    ok(login(api, onl, u, "Web"))
    r = online(api, onl, [u], IsNeedDetail=1, IsReturnCustomStatus=1)
    assert r.code == 0
    (item,) = r["QueryResult"]
    assert item["Status"] == "Online"
    assert not [k for k in item if "Custom" in k], item


def test_pushonline_becomes_offline_after_7_days_of_app_clock(api, apps13):
    """docs/protocol.md §11.1 and §11.2 (time is the app's clock): PushOnline becomes Offline
    after 7 days; an Online device of another user is not touched by the rule."""
    app = apps13["onl_clock"]
    u, w = imported(api, app, 2)
    ok(login(api, app, u, "iPhone"))
    ok(disconnect(api, app, u, "iPhone"))
    try:
        set_clock(api, app, 6 * DAY)
        assert state(api, app, u) == "PushOnline"
        set_clock(api, app, 7 * DAY + 120)
        assert state(api, app, u) == "Offline"
        # a login at the app's new time starts afresh
        ok(login(api, app, w, "iPad"))
        ok(disconnect(api, app, w, "iPad"))
        assert state(api, app, w) == "PushOnline"
    finally:
        set_clock(api, app, 0)


# ------------------------------------------------------------------ codes of the command


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="bad_json"),
        pytest.param(b"", id="empty_body"),
        pytest.param(b"[]", id="not_an_object"),
        pytest.param(b"{}", id="missing_to_account"),
        pytest.param(b'{"To_Account": []}', id="empty_to_account"),
        pytest.param(b'{"To_Account": "abc"}', id="to_account_not_array"),
    ],
)
def test_body_errors_90001(api, onl, body):
    """docs/protocol.md §11.1: bad JSON, empty or missing To_Account -> 90001 with Tencent's
    ErrorInfo (instead of 60003 / 70402)."""
    r = post_raw(api, onl, body)
    assert r.code == 90001
    assert PARSE_FAIL in r.info


@pytest.mark.parametrize(
    "accounts",
    [[1], [None], ["a", 2], [["x"]], [{"UserID": "x"}], [True], [1.5]],
    ids=["int", "null", "mixed", "array", "object", "bool", "float"],
)
def test_non_string_element_90003(api, onl, accounts):
    """docs/protocol.md §11.1: an element of To_Account that is not a string -> 90003
    (numbers included, instead of 60015)."""
    assert online(api, onl, accounts).code == 90003


def test_more_than_500_is_90011(api, onl):
    """docs/protocol.md §11.1: more than 500 accounts -> 90011."""
    r = online(api, onl, [f"u{i}" for i in range(501)])
    assert r.code == 90011


def test_non_admin_is_70403_not_90009(api, onl):
    """docs/protocol.md §11.1: the framework's 70403 comes first for a non-admin identifier;
    90009 is never produced."""
    (u,) = imported(api, onl)
    r = api.post("query_online_status", {"To_Account": [u]}, onl, service=OPENIM, identifier=u, usersig=onl.sig(u))
    assert r.code == 70403


def test_framework_checks_come_before_body_rules(api, onl):
    """docs/protocol.md §11.1 with §4: the REST framework answers first (bad UserSig, missing
    random, unknown command), then the command's body rules."""
    wrong_key = build_sig("0" * 64, ADMIN, onl.sdkappid)
    assert post_raw(api, onl, b"{").code == 90001
    assert api.post("query_online_status", b"{", onl, service=OPENIM, usersig=wrong_key).code == 70009
    assert api.post("query_online_status", b"{", onl, service=OPENIM, random_=-1).code == 60002
    assert api.post("query_online_status_x", {"To_Account": ["a"]}, onl, service=OPENIM).code == 60009
    assert api.post("query_online_status", {"To_Account": ["a"]}, onl).code == 60009  # wrong service


# ------------------------------------------------------------------ legacy querystate


def test_querystate_items_use_state(api, onl):
    """docs/protocol.md §11.1: v4/openim/querystate takes the same request; each QueryResult
    item is {To_Account, State} (Detail with IsNeedDetail), ErrorList as well."""
    u, v = imported(api, onl, 2)
    ghost = uid("ghost")
    ok(login(api, onl, u, "iPhone"))
    r = online(api, onl, [u, v, ghost], command="querystate")
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": u, "State": "Online"}, {"To_Account": v, "State": "Offline"}]
    assert r["ErrorList"] == [{"To_Account": ghost, "ErrorCode": 70107}]
    r = online(api, onl, [u], command="querystate", IsNeedDetail=1)
    (item,) = r["QueryResult"]
    assert item["State"] == "Online" and "Status" not in item
    assert item["Detail"] == [{"Platform": "iPhone", "Status": "Online"}]


def test_querystate_same_codes(api, onl):
    """docs/protocol.md §11.1: querystate follows the same rules (90001, 90003, 90011, 70107)."""
    assert post_raw(api, onl, b'{"To_Account": []}', command="querystate").code == 90001
    assert online(api, onl, [7], command="querystate").code == 90003
    assert online(api, onl, [f"u{i}" for i in range(501)], command="querystate").code == 90011
    assert online(api, onl, [uid("ghost")], command="querystate").code == 70107


def test_admin_is_an_account_offline(api, onl):
    """docs/protocol.md §11.1 with §9 (admins are accounts too): an admin that never logged in
    is Offline, not in ErrorList."""
    r = online(api, onl, [ADMIN])
    assert r.code == 0
    assert r["QueryResult"] == [{"To_Account": ADMIN, "Status": "Offline"}]
    assert r["ErrorList"] == []


def test_default_rates_querystate_100_query_online_status_above(api, apps13):
    """docs/protocol.md §11.1: query_online_status's default limit is 200 calls/s (150 quick
    calls all pass); querystate's is 100 calls/s."""
    app = apps13["onl_rate"]
    (u,) = imported(api, app)
    body = {"To_Account": [u]}
    codes = [api.post("query_online_status", body, app, service=OPENIM).code for _ in range(150)]
    assert codes == [0] * 150
    samples = []
    t0 = time.monotonic()
    for _ in range(104):
        code = api.post("querystate", body, app, service=OPENIM).code
        samples.append((time.monotonic() - t0, code))
    codes = [c for _, c in samples]
    assert set(codes) <= {0, 60007}, codes
    ok_times = [t for t, c in samples if c == 0]
    assert max(sum(1 for x in ok_times[i:] if x - t < 1.0) for i, t in enumerate(ok_times)) <= 100
    if samples[100][0] >= 0.95:
        pytest.skip("machine too slow to send 101 calls inside one second")
    assert codes == [0] * 100 + [60007] * 4
