"""Fault rules over real HTTP: each kind, scoping, determinism, where they apply, isolation."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from timserver import usersig
from timserver.emulator.faults import draw
from timserver.testing import ControlError, TimServer

pytestmark = pytest.mark.slow

CHECK = "account_check"


def check(server: TimServer, *users: str) -> dict[str, Any]:
    return server.call(CHECK, {"CheckItem": [{"UserID": u} for u in users]})


def imported(server: TimServer, user: str) -> bool:
    return check(server, user)["ResultItem"][0]["AccountStatus"] == "Imported"


# --- each kind of rule ---------------------------------------------------------------------------


def test_code_for_the_next_n_calls(tim_server: TimServer) -> None:
    rule = tim_server.add_fault(command=CHECK, code=70169, times=2)
    assert rule["Remaining"] == 2
    answers = [check(tim_server, "administrator") for _ in range(4)]
    assert [a["ErrorCode"] for a in answers] == [70169, 70169, 0, 0]
    failed = answers[0]
    assert list(failed) == ["ActionStatus", "ErrorInfo", "ErrorCode"]  # Tencent's failure shape
    assert failed["ActionStatus"] == "FAIL" and "retry" in failed["ErrorInfo"]
    (listed,) = tim_server.faults()
    assert (listed["Remaining"], listed["Matched"]) == (0, 2)


@pytest.mark.parametrize("code", [70202, 70500, 60007, 70001])
def test_any_catalogue_code(tim_server: TimServer, code: int) -> None:
    tim_server.add_fault(command="account_import", code=code, times=1)
    assert tim_server.call("account_import", {"UserID": "zoe"})["ErrorCode"] == code
    assert not imported(tim_server, "zoe")  # the handler did not run
    assert tim_server.call("account_import", {"UserID": "zoe"})["ErrorCode"] == 0
    assert imported(tim_server, "zoe")


def test_latency_then_normal_answer(tim_server: TimServer) -> None:
    tim_server.add_fault(command=CHECK, latency_ms=400, times=1)
    started = time.monotonic()
    answer = check(tim_server, "administrator")
    slow = time.monotonic() - started
    assert answer["ErrorCode"] == 0 and answer["ResultItem"][0]["AccountStatus"] == "Imported"
    assert slow >= 0.4
    assert check(tim_server, "administrator")["ErrorCode"] == 0
    assert tim_server.faults()[0]["Matched"] == 1


def test_latency_with_a_code(tim_server: TimServer) -> None:
    tim_server.add_fault(command=CHECK, latency_ms=300, code=70169, times=1)
    started = time.monotonic()
    assert check(tim_server, "administrator")["ErrorCode"] == 70169
    assert time.monotonic() - started >= 0.3


def test_drop_closes_the_connection_without_an_answer(tim_server: TimServer) -> None:
    tim_server.add_fault(command="kick", drop=True, times=1)
    tim_server.call("account_import", {"UserID": "dan"})
    with httpx.Client() as client:  # one keep-alive connection, as SDKs use
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(tim_server.url("kick"), json={"UserID": "dan"})
        # The next call (a new connection) is served; nothing of the dropped one was applied.
        answer = client.post(tim_server.url(CHECK), json={"CheckItem": [{"UserID": "dan"}]})
        assert answer.json()["ErrorCode"] == 0
    assert tim_server.call("kick", {"UserID": "dan"})["ErrorCode"] == 0


def test_fail_items_of_account_check(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob"]})
    tim_server.add_fault(command=CHECK, fail_items=True, user_id="bob", code=70169)
    answer = check(tim_server, "amy", "bob", "cat", "bob")
    assert answer["ErrorCode"] == 0
    items = answer["ResultItem"]
    assert [i["UserID"] for i in items] == ["amy", "bob", "cat", "bob"]
    assert [i["ResultCode"] for i in items] == [0, 70169, 0, 70169]
    assert [i["AccountStatus"] for i in items] == ["Imported", "NotImported", "NotImported",
                                                   "NotImported"]
    assert items[1]["ResultInfo"]
    assert list(items[1]) == ["UserID", "ResultCode", "ResultInfo", "AccountStatus"]


def test_fail_items_of_account_delete_keeps_the_failed_account(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob", "cat"]})
    tim_server.add_fault(command="account_delete", fail_items=True, user_id="bob")
    answer = tim_server.call("account_delete", {"DeleteItem": [{"UserID": u} for u in
                                                               ("amy", "bob", "cat", "nobody")]})
    assert [(i["UserID"], i["ResultCode"]) for i in answer["ResultItem"]] == [
        ("amy", 0), ("bob", 70500), ("cat", 0), ("nobody", 70107)]
    assert not imported(tim_server, "amy") and not imported(tim_server, "cat")
    assert imported(tim_server, "bob")  # a failed item is not applied


def test_fail_items_of_multiaccount_import(tim_server: TimServer) -> None:
    tim_server.add_fault(command="multiaccount_import", fail_items=True, user_id="bob")
    answer = tim_server.call("multiaccount_import", {"AccountList": [
        {"UserID": "amy"}, {"UserID": "bob", "Nick": "Bob"}, {"UserID": ""}, {"UserID": "cat"}]})
    assert answer["ErrorCode"] == 0
    assert answer["FailAccounts"] == ["bob", ""]  # request order: injected and real failures
    assert imported(tim_server, "amy") and imported(tim_server, "cat")
    assert not imported(tim_server, "bob")
    # Old format too, and a batch whose every item fails.
    answer = tim_server.call("multiaccount_import", {"Accounts": ["bob", "bob"]})
    assert answer["FailAccounts"] == ["bob"] and not imported(tim_server, "bob")


def test_fail_items_with_an_item_probability_is_seeded(tim_server: TimServer) -> None:
    users = [f"user{i:02d}" for i in range(30)]
    tim_server.add_fault(command=CHECK, fail_items=True, item_probability=0.5, seed=7,
                         code=70202)
    for k in (1, 2):  # the k-th matching call draws item i with draw(seed, k, i)
        codes = [i["ResultCode"] for i in check(tim_server, *users)["ResultItem"]]
        expected = [70202 if draw(7, k, i) < 0.5 else 0 for i in range(len(users))]
        assert codes == expected
        assert 0 < codes.count(70202) < len(users)


def test_fail_items_on_a_single_account_command_fails_the_call(tim_server: TimServer) -> None:
    tim_server.add_fault(command="account_import", fail_items=True, code=70202, times=1)
    assert tim_server.call("account_import", {"UserID": "eve"})["ErrorCode"] == 70202
    assert not imported(tim_server, "eve")


def test_fail_items_of_query_online_status_are_error_list_entries(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"Accounts": ["amy", "bob"]})
    tim_server.login("amy")
    for command, key in (("query_online_status", "Status"), ("querystate", "State")):
        rule = tim_server.add_fault(command=command, fail_items=True, user_id="bob", code=70169)
        answer = tim_server.call(command, {"To_Account": ["amy", "bob", "nobody", "bob"]})
        assert answer["ErrorCode"] == 0
        assert [(i["To_Account"], i[key]) for i in answer["QueryResult"]] == [("amy", "Online")]
        assert answer["ErrorList"] == [  # request order: injected and real failures
            {"To_Account": "bob", "ErrorCode": 70169}, {"To_Account": "nobody", "ErrorCode": 70107},
            {"To_Account": "bob", "ErrorCode": 70169}]
        # every item failed: the call fails with the rule's code, as when none is imported
        failed = tim_server.call(command, {"To_Account": ["bob"]})
        assert (failed["ActionStatus"], failed["ErrorCode"]) == ("FAIL", 70169)
        assert failed["QueryResult"] == [] and failed["ErrorList"] == [
            {"To_Account": "bob", "ErrorCode": 70169}]
        tim_server.clear_faults(rule["Id"])


def test_fail_items_of_portrait_get_are_failed_profiles(tim_server: TimServer) -> None:
    tim_server.call("multiaccount_import", {"AccountList": [{"UserID": "amy", "Nick": "Amy"},
                                                            {"UserID": "bob", "Nick": "Bob"}]})
    tim_server.add_fault(command="portrait_get", fail_items=True, user_id="bob", code=70202)
    body = {"To_Account": ["amy", "bob", "nobody"], "TagList": ["Tag_Profile_IM_Nick"]}
    answer = tim_server.call("portrait_get", body)
    assert answer["ErrorCode"] == 0
    items = answer["UserProfileItem"]
    assert [(i["To_Account"], i["ResultCode"]) for i in items] == [
        ("amy", 0), ("bob", 70202), ("nobody", 40003)]
    assert items[0]["ProfileItem"] == [{"Tag": "Tag_Profile_IM_Nick", "Value": "Amy"}]
    assert items[1]["ProfileItem"] == [] and items[1]["ResultInfo"]
    assert answer["Fail_Account"] == ["bob", "nobody"]
    assert list(answer) == ["UserProfileItem", "Fail_Account", "ActionStatus", "ErrorCode",
                            "ErrorInfo", "ErrorDisplay"]
    every = tim_server.call("portrait_get", {**body, "To_Account": ["bob"]})
    assert (every["ErrorCode"], every["Fail_Account"]) == (0, ["bob"])


def test_fail_items_of_portrait_set_fails_the_call(tim_server: TimServer) -> None:
    tim_server.call("account_import", {"UserID": "amy", "Nick": "Amy"})
    tim_server.add_fault(command="portrait_set", fail_items=True, code=70202, times=1)
    body = {"From_Account": "amy", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "X"}]}
    assert tim_server.call("portrait_set", body)["ErrorCode"] == 70202
    nick = tim_server.call("portrait_get", {"To_Account": ["amy"],
                                            "TagList": ["Tag_Profile_IM_Nick"]})
    assert nick["UserProfileItem"][0]["ProfileItem"][0]["Value"] == "Amy"


# --- determinism under a seed --------------------------------------------------------------------


def _pattern(server: TimServer, calls: int) -> list[bool]:
    codes = [check(server, "administrator")["ErrorCode"] for _ in range(calls)]
    assert set(codes) <= {0, 70202}
    return [code == 70202 for code in codes]


@pytest.fixture
def unlimited_check(tim_server: TimServer) -> Any:
    """account_check without a rate limit for one test (120 calls go faster than 100/s)."""
    tim_server.cli("app", "set-limit", str(tim_server.sdkappid), CHECK, "0")
    yield
    tim_server.cli("app", "set-limit", str(tim_server.sdkappid), CHECK, "100")


def test_probability_is_a_pure_function_of_the_seed(tim_server: TimServer,
                                                    unlimited_check: None) -> None:
    calls = 40
    expected = {seed: [draw(seed, k) < 0.3 for k in range(1, calls + 1)] for seed in (42, 43)}
    assert expected[42] != expected[43] and any(expected[42]) and not all(expected[42])
    tim_server.add_fault(command=CHECK, code=70202, probability=0.3, seed=42)
    assert _pattern(tim_server, calls) == expected[42]
    # The same rule again (a new id, counted from 1 again): the same outcomes, call for call.
    tim_server.clear_faults()
    tim_server.add_fault(command=CHECK, code=70202, probability=0.3, seed=42)
    assert _pattern(tim_server, calls) == expected[42]
    tim_server.clear_faults()
    tim_server.add_fault(command=CHECK, code=70202, probability=0.3, seed=43)
    assert _pattern(tim_server, calls) == expected[43]


def test_probability_zero_and_one(tim_server: TimServer) -> None:
    never = tim_server.add_fault(command=CHECK, code=70500, probability=0)
    assert [check(tim_server, "administrator")["ErrorCode"] for _ in range(5)] == [0] * 5
    tim_server.clear_faults(never["Id"])
    tim_server.add_fault(command=CHECK, code=70500, probability=1)
    assert [check(tim_server, "administrator")["ErrorCode"] for _ in range(5)] == [70500] * 5


# --- scoping -------------------------------------------------------------------------------------


def test_userid_scope_matches_only_bodies_naming_it(tim_server: TimServer) -> None:
    tim_server.add_fault(command="all", user_id="bob", code=70500)
    assert check(tim_server, "amy")["ErrorCode"] == 0
    assert check(tim_server, "amy", "bob")["ErrorCode"] == 70500
    assert tim_server.call("account_import", {"UserID": "amy"})["ErrorCode"] == 0
    assert tim_server.call("account_import", {"Identifier": "bob"})["ErrorCode"] == 70500
    assert tim_server.call("multiaccount_import", {"Accounts": ["x", "bob"]})["ErrorCode"] == 70500
    assert tim_server.faults()[0]["Matched"] == 3  # calls not naming bob are not counted


def test_command_scope(tim_server: TimServer) -> None:
    tim_server.add_fault(command="kick", code=70202)
    assert check(tim_server, "administrator")["ErrorCode"] == 0
    assert tim_server.call("account_import", {"UserID": "amy"})["ErrorCode"] == 0
    assert tim_server.call("kick", {"UserID": "amy"})["ErrorCode"] == 70202
    tim_server.clear_faults()
    tim_server.add_fault(code=70202)  # Command defaults to all
    assert tim_server.faults()[0]["Command"] == "all"
    for command, body in [(CHECK, {"CheckItem": [{"UserID": "amy"}]}),
                          ("account_import", {"UserID": "amy"}),
                          ("multiaccount_import", {"Accounts": ["amy"]}),
                          ("account_delete", {"DeleteItem": [{"UserID": "amy"}]}),
                          ("kick", {"UserID": "amy"})]:
        assert tim_server.call(command, body)["ErrorCode"] == 70202, command


def test_rules_run_oldest_first_latency_adds_up(tim_server: TimServer) -> None:
    tim_server.add_fault(command=CHECK, latency_ms=200, times=1)
    tim_server.add_fault(command=CHECK, code=70169, times=1)
    tim_server.add_fault(command=CHECK, code=70500, times=1)
    started = time.monotonic()
    assert check(tim_server, "administrator")["ErrorCode"] == 70169
    assert time.monotonic() - started >= 0.2
    assert check(tim_server, "administrator")["ErrorCode"] == 70500  # the first fired, not this
    assert check(tim_server, "administrator")["ErrorCode"] == 0


# --- where a fault applies: after auth, rate limit and body validation -----------------------------


def test_faults_apply_after_every_check_of_the_request(tim_server: TimServer) -> None:
    tim_server.add_fault(code=70500)
    bad_sig = usersig.generate(tim_server.sdkappid, "0" * 64, "administrator",
                               now=int(time.time()))
    assert tim_server.call(CHECK, {"CheckItem": [{"UserID": "a"}]},
                           usersig=bad_sig)["ErrorCode"] == 70009
    assert tim_server.call(CHECK, {"CheckItem": []})["ErrorCode"] == 70402
    assert tim_server.call(CHECK, b"{not json")["ErrorCode"] == 60003
    assert tim_server.call(CHECK, {"CheckItem": [{"UserID": 5}]})["ErrorCode"] == 60015
    assert tim_server.faults()[0]["Matched"] == 0  # none of them reached the rule
    assert check(tim_server, "a")["ErrorCode"] == 70500


def test_rate_limit_comes_before_the_fault(tim_server: TimServer) -> None:
    tim_server.cli("app", "set-limit", str(tim_server.sdkappid), CHECK, "2")
    try:
        tim_server.add_fault(command=CHECK, code=70202)
        codes = [check(tim_server, "a")["ErrorCode"] for _ in range(3)]
        assert codes == [70202, 70202, 60007]
        assert tim_server.faults()[0]["Matched"] == 2
    finally:
        tim_server.cli("app", "set-limit", str(tim_server.sdkappid), CHECK, "100")


# --- the CLI reaches a running server; the control endpoint's contract -----------------------------


def test_cli_rules_reach_the_running_server(tim_server: TimServer) -> None:
    out = tim_server.cli("faults", "add", "--sdkappid", str(tim_server.sdkappid), "--command",
                         CHECK, "--code", "70202", "--times", "1", "--json").stdout
    rule = json.loads(out)
    assert rule["Code"] == 70202 and rule["Times"] == 1
    assert check(tim_server, "a")["ErrorCode"] == 70202
    assert check(tim_server, "a")["ErrorCode"] == 0
    listed = [json.loads(line) for line in tim_server.cli(
        "faults", "list", "--sdkappid", str(tim_server.sdkappid), "--json").stdout.splitlines()]
    assert [(r["Id"], r["Remaining"], r["Matched"]) for r in listed] == [(rule["Id"], 0, 1)]
    tim_server.cli("faults", "add", "--sdkappid", str(tim_server.sdkappid), "--code", "70500")
    assert check(tim_server, "a")["ErrorCode"] == 70500
    tim_server.cli("faults", "clear", "--sdkappid", str(tim_server.sdkappid))
    assert check(tim_server, "a")["ErrorCode"] == 0
    assert tim_server.faults() == []


def test_cli_refuses_bad_rules(tim_server: TimServer) -> None:
    app = str(tim_server.sdkappid)
    for args, says in [
        (["--code", "12345"], "catalogue"),
        (["--drop", "--code", "70500"], "--drop"),
        ([], "action"),
        (["--code", "70500", "--probability", "0.5", "--times", "2"], "exclude"),
        (["--latency-ms", "999999"], "LatencyMs"),
        (["--code", "70500", "--command", "nope"], "nope"),
    ]:
        done = tim_server.cli("faults", "add", "--sdkappid", app, *args, check=False)
        assert done.returncode != 0 and says in done.stderr, (args, done.stderr)
    done = tim_server.cli("faults", "add", "--sdkappid", "1", "--code", "70500", check=False)
    assert done.returncode != 0 and "no app" in done.stderr
    assert tim_server.faults() == []


def _raw(server: TimServer, method: str, path: str, content: bytes | None = None,
         **query: str) -> httpx.Response:
    params = {"sdkappid": str(server.sdkappid), "identifier": server.admin,
              "usersig": server.usersig(), **query}
    return httpx.request(method, f"{server.base_url}{path}", params=params, content=content)


@pytest.mark.parametrize(("method", "path", "content", "code"), [
    ("POST", "/_timserver/faults", b'{"Code": 12345}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "Probabilty": 0.5}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "Probability": 1.5}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "Times": 0}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "Seed": -1}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": true}', 70402),
    ("POST", "/_timserver/faults", b'{"Drop": "yes"}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "UserID": 5}', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "UserID": ""}', 70402),
    ("POST", "/_timserver/faults", b'{"Command": "kick"}', 70402),
    ("POST", "/_timserver/faults", b'[1, 2]', 70402),
    ("POST", "/_timserver/faults", b'{"Code": 70500', 60003),
    ("POST", "/_timserver/faults", b'', 60003),
    ("POST", "/_timserver/faults", b'{"Code": 70500, "x": "' + b'a' * 70000 + b'"}', 60008),
    ("POST", "/_timserver/faults/clear", b'{"Id": "1"}', 70402),
    ("POST", "/_timserver/reset", b'{"Faults": 1}', 70402),
    ("POST", "/_timserver/reset", b'{"Everything": true}', 70402),
    ("POST", "/_timserver/clock", b'{"Offset": 1, "Advance": 1}', 70402),
    ("POST", "/_timserver/clock", b'{"Offset": "1"}', 70402),
    ("POST", "/_timserver/clock", b'{"Offset": 1e300}', 70402),
    ("GET", "/_timserver/faults/clear", None, 60008),
    ("PUT", "/_timserver/faults", b'{}', 60008),
    ("DELETE", "/_timserver/reset", None, 60008),
])
def test_control_endpoints_answer_bad_input_with_an_envelope(
        tim_server: TimServer, method: str, path: str, content: bytes | None, code: int) -> None:
    response = _raw(tim_server, method, path, content)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    answer = response.json()
    assert answer["ActionStatus"] == "FAIL" and answer["ErrorCode"] == code, answer
    assert answer["ErrorInfo"]
    assert tim_server.faults() == []


@pytest.mark.parametrize(("query", "code"), [
    ({"usersig": None}, 60004),
    ({"identifier": ""}, 60004),
    ({"usersig": ""}, 70002),
    ({"usersig": "garbage"}, 70003),
    ({"sdkappid": ""}, 60012),
    ({"sdkappid": "99"}, 60006),
])
def test_control_endpoints_need_admin_credentials(tim_server: TimServer, query: dict[str, Any],
                                                  code: int) -> None:
    params = {"sdkappid": str(tim_server.sdkappid), "identifier": tim_server.admin,
              "usersig": tim_server.usersig()}
    params.update({k: v for k, v in query.items() if v is not None})
    for name in [k for k, v in query.items() if v is None]:
        params.pop(name)
    response = httpx.get(f"{tim_server.base_url}/_timserver/faults", params=params)
    assert response.status_code == 200 and response.json()["ErrorCode"] == code


def test_a_non_admin_is_refused(tim_server: TimServer) -> None:
    tim_server.call("account_import", {"UserID": "mallory"})
    response = _raw(tim_server, "GET", "/_timserver/faults", identifier="mallory",
                    usersig=tim_server.usersig("mallory"))
    assert response.json()["ErrorCode"] == 70403


def test_too_many_rules(tim_server: TimServer) -> None:
    for _ in range(100):
        tim_server.add_fault(command="kick", code=70500)
    with pytest.raises(ControlError) as refused:
        tim_server.add_fault(command="kick", code=70500)
    assert refused.value.answer["ErrorCode"] == 70402 and "100" in refused.value.answer["ErrorInfo"]


# --- one app never sees nor touches another's rules ------------------------------------------------


def test_apps_are_isolated(tim_server: TimServer, second_app: dict[str, Any]) -> None:
    mine = tim_server.add_fault(command=CHECK, code=70500)
    other = second_app["sdkappid"]
    sig = usersig.generate(other, second_app["key"], "administrator", now=int(time.time()))
    base = f"{tim_server.base_url}/_timserver/faults"
    params = {"sdkappid": str(other), "identifier": "administrator", "usersig": sig}
    assert httpx.get(base, params=params).json()["Rules"] == []
    cleared = httpx.post(base + "/clear", params=params, json={"Id": mine["Id"]}).json()
    assert cleared["ErrorCode"] == 0 and cleared["Deleted"] == 0
    theirs = httpx.post(base, params=params, json={"Command": CHECK, "Code": 70202}).json()
    assert theirs["ErrorCode"] == 0 and theirs["Rule"]["SDKAppID"] == other
    # Each app's calls meet only its own rules.
    assert check(tim_server, "a")["ErrorCode"] == 70500
    url = (f"{tim_server.base_url}/v4/im_open_login_svc/{CHECK}?sdkappid={other}"
           f"&identifier=administrator&usersig={sig}&random=1&contenttype=json")
    assert httpx.post(url, json={"CheckItem": [{"UserID": "a"}]}).json()["ErrorCode"] == 70202
    assert [r["Id"] for r in tim_server.faults()] == [mine["Id"]]
    # A sig of the other app cannot act for this one.
    params["sdkappid"] = str(tim_server.sdkappid)
    assert httpx.get(base, params=params).json()["ErrorCode"] == 70014
