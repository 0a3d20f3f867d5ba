"""The emulator's pure parts: rule parsing, the seeded draw, faults files (seed files:
tests/test_accountfiles.py, with the reader they share)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from timserver.emulator.faults import FaultSpec, RuleError, draw, parse_rule
from timserver.emulator.state import read_faults_file
from timserver.protocol import messages as m
from timserver.protocol.commands import BY_NAME
from timserver.storage import App


def test_a_rule_round_trips_through_its_json() -> None:
    spec = parse_rule({"Command": "account_check", "UserID": "bob", "Code": 70169,
                       "LatencyMs": 250, "Probability": 0.25, "Seed": 5})
    assert spec == FaultSpec(command="account_check", user_id="bob", code=70169, latency_ms=250,
                             probability=0.25, seed=5)
    assert parse_rule(spec.to_json()) == spec
    items = parse_rule({"FailItems": True, "ItemProbability": 0.5, "Code": 70202, "Times": 3})
    assert parse_rule(items.to_json()) == items
    assert "account_check calls naming 'bob'" in spec.describe()


def test_a_rule_without_seed_gets_one_to_show() -> None:
    seeds = {parse_rule({"Code": 70500}).seed for _ in range(5)}
    assert all(isinstance(s, int) and s >= 0 for s in seeds) and len(seeds) > 1


@pytest.mark.parametrize(("rule", "says"), [
    ({}, "needs an action"),
    ({"Code": 0}, "catalogue"),
    ({"Code": 70500.0}, "catalogue"),
    ({"Code": 70500, "Command": "sendmsg"}, "Command"),
    ({"Code": 70500, "UserID": "x" * 33}, "UserID"),
    ({"Code": 70500, "UserID": "a\nb"}, "UserID"),
    ({"Drop": True, "FailItems": True}, "Drop"),
    ({"Drop": True, "Code": 70500}, "Drop"),
    ({"Code": 70500, "ItemProbability": 0.5}, "FailItems"),
    ({"FailItems": True, "ItemProbability": 0}, "ItemProbability"),
    ({"Code": 70500, "Probability": 0.5, "Times": 2}, "not both"),
    ({"Code": 70500, "Probability": float("nan")}, "Probability"),
    ({"Code": 70500, "Times": True}, "Times"),
    ({"LatencyMs": 120_001}, "LatencyMs"),
    ({"LatencyMs": -1}, "LatencyMs"),
    ({"Code": 70500, "Seed": 2**63}, "Seed"),
    ({"Code": 70500, "Id": 3}, "unknown field"),
    ("70500", "JSON object"),
])
def test_bad_rules_say_what_is_wrong(rule: Any, says: str) -> None:
    with pytest.raises(RuleError, match=says):
        parse_rule(rule)


def test_output_keys_are_ignored_only_when_asked() -> None:
    listed = {"Id": 3, "SDKAppID": 1, "Code": 70500, "Remaining": 0, "Matched": 9,
              "CreatedAt": 1.0, "Description": "x"}
    assert parse_rule(listed, ignore_output_keys=True).code == 70500


def test_the_draw_is_deterministic_and_uniform_enough() -> None:
    assert draw(42, 1) == draw(42, 1) and draw(42, 1) != draw(42, 2) != draw(43, 2)
    assert draw(42, 1, 0) != draw(42, 1, 1)
    values = [draw(7, k) for k in range(1, 10_001)]
    assert all(0 <= v < 1 for v in values)
    share = sum(v < 0.1 for v in values) / len(values)
    assert 0.08 < share < 0.12


def test_request_user_ids() -> None:
    """The UserIDs a request names, read from its command's declaration (``Command.user_ids``)."""
    def request_user_ids(command: str, request: object) -> list[str]:
        return BY_NAME[command].user_ids_of(request)

    assert request_user_ids("account_check", m.AccountCheckRequest(
        CheckItem=[m.UserRef(UserID="a"), m.UserRef(UserID="a")])) == ["a", "a"]
    assert request_user_ids("multiaccount_import",
                            m.MultiAccountImportRequest(Accounts=["x", "y"])) == ["x", "y"]
    assert request_user_ids("multiaccount_import", m.MultiAccountImportRequest(
        AccountList=[m.AccountListItem(UserID="z")])) == ["z"]
    assert request_user_ids("kick", m.KickRequest(UserID="k")) == ["k"]
    assert request_user_ids("account_delete", m.AccountDeleteRequest(
        DeleteItem=[m.UserRef(UserID="d")])) == ["d"]
    assert request_user_ids("query_online_status", m.QueryOnlineStatusRequest(
        To_Account=["q", "r"])) == ["q", "r"]
    assert request_user_ids("portrait_get", m.PortraitGetRequest(
        To_Account=["p"], TagList=[m.NICK_TAG])) == ["p"]
    assert request_user_ids("portrait_set", m.PortraitSetRequest(
        From_Account="s", ProfileItem=[])) == ["s"]
    assert request_user_ids("account_import", m.AccountImportRequest(UserID="i")) == ["i"]


def test_every_command_declares_where_its_request_names_userids() -> None:
    from timserver.protocol.commands import COMMANDS

    for cmd in COMMANDS:
        assert cmd.user_ids, cmd.name
        fields = set(cmd.request.__struct_fields__)
        assert all(where.field in fields for where in cmd.user_ids), cmd.name
        # a batch's answer says how an item fails; one account per call fails as a whole
        assert (cmd.items is not None) == (cmd.max_items > 1 and cmd.name != "portrait_set")


# --- faults files ----------------------------------------------------------------------------------


APPS = [App(1400000001, "k" * 64, "developer", ("administrator",)),
        App(1400000002, "k" * 64, "developer", ("administrator",))]


def test_faults_files_in_three_shapes(tmp_path: Path) -> None:
    rule = {"SDKAppID": 1400000002, "Command": "kick", "Code": 70500, "Seed": 1}
    for text in (json.dumps([rule, rule]), json.dumps({"Rules": [rule, rule]}),
                 json.dumps(rule) + "\n\n" + json.dumps(rule) + "\n"):
        path = tmp_path / "rules.json"
        path.write_text(text)
        rules = read_faults_file(path, APPS)
        assert [(a, s.command, s.code) for a, s in rules] == [(1400000002, "kick", 70500)] * 2


@pytest.mark.parametrize(("content", "says"), [
    ('[{"Code": 70500}]', "say which app"),
    ('[{"SDKAppID": 5, "Code": 70500}]', "not an app"),
    ('[{"SDKAppID": 1400000001, "Code": 1}]', "rule 1: Code"),
    ('[7]', "JSON object"),
    ('{"Code": 70500\n', "line 1 is not JSON"),
])
def test_bad_faults_files(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(RuleError, match=says):
        read_faults_file(path, APPS)


def test_a_faults_file_may_omit_the_app_when_there_is_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"Code": 70500}')
    assert read_faults_file(path, APPS[:1])[0][0] == 1400000001
    path.write_text(json.dumps([{"SDKAppID": 1400000001, "Code": 70500}] * 101))
    with pytest.raises(RuleError, match="more than 100"):
        read_faults_file(path, APPS)
