"""What a body's refusal says, word for word, and the batch-size edges (docs/protocol.md §4 step 9, §7.8):
from a parser built afresh from the request structs and over HTTP (found by mutation testing,
docs/testing.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgspec import UNSET, Struct, UnsetType

from timserver.protocol import messages as m
from timserver.protocol.commands import COMMANDS
from timserver.protocol.errors import TimError
from timserver.protocol.validate import RequestParser

BY_NAME = {c.name: c for c in COMMANDS}


def fresh(name: str) -> RequestParser:
    """A parser compiled now, from the command's declaration (what the server builds at start)."""
    cmd = BY_NAME[name]
    return RequestParser(cmd.request, cmd.max_items, cmd.exactly_one_of)


def bad(what: str) -> tuple[int, str]:
    return 70402, f"Invalid parameters: {what}."


NUMBER = "Account type error: {} is a number; a UserID must be a JSON string."
ITEMS = [{"UserID": f"u{i}"} for i in range(101)]

REFUSED = [
    ("account_check", [], bad("the body must be a JSON object, not an array")),
    ("account_check", None, bad("the body must be a JSON object, not null")),
    ("account_check", "x", bad("the body must be a JSON object, not a string")),
    ("account_check", 1.5, bad("the body must be a JSON object, not a number")),
    ("account_check", True, bad("the body must be a JSON object, not a boolean")),
    ("account_check", {}, bad("CheckItem is required")),
    ("account_check", {"CheckItem": {}}, bad("CheckItem must be an array, not an object")),
    ("account_check", {"CheckItem": []}, bad("CheckItem must not be empty")),
    ("account_check", {"CheckItem": ITEMS},
     bad("CheckItem has 101 items; at most 100 are allowed per call")),
    ("account_check", {"CheckItem": [{"UserID": "a"}, {}]}, bad("CheckItem[1].UserID is required")),
    ("account_check", {"CheckItem": [{"UserID": "a"}, "b"]},
     bad("CheckItem[1] must be a JSON object, not a string")),
    ("account_check", {"CheckItem": [{"UserID": 7}]}, (60015, NUMBER.format("CheckItem[0].UserID"))),
    ("account_delete", {"DeleteItem": [{"UserID": 0.5}]},
     (60015, NUMBER.format("DeleteItem[0].UserID"))),
    ("account_delete", {"DeleteItem": [{"UserID": False}]},
     bad("DeleteItem[0].UserID must be a string, not a boolean")),
    ("account_delete", {"DeleteItem": [{"UserID": None}]},
     bad("DeleteItem[0].UserID must be a string, not null")),
    ("account_delete", {"DeleteItem": [{"UserID": ["a"]}]},
     bad("DeleteItem[0].UserID must be a string, not an array")),
    ("account_import", {"Identifier": 5}, (60015, NUMBER.format("Identifier"))),
    ("account_import", {"UserID": 5, "Identifier": "b"}, (60015, NUMBER.format("UserID"))),
    ("kick", {"UserID": None, "Identifier": "b"}, bad("UserID must be a string, not null")),
    ("account_import", {"UserID": {}}, bad("UserID must be a string, not an object")),
    ("account_import", {"UserID": "a", "Nick": 5}, bad("Nick must be a string, not a number")),
    ("account_import", {"UserID": "a", "FaceUrl": None}, bad("FaceUrl must be a string, not null")),
    ("account_import", {"Nick": "n"}, bad("UserID is required")),
    ("kick", {"Identifier": True}, bad("Identifier must be a string, not a boolean")),
    ("kick", {}, bad("UserID is required")),
    ("multiaccount_import", {},
     bad("the body must have exactly one of Accounts or AccountList; neither is present")),
    ("multiaccount_import", {"Accounts": ["a"], "AccountList": [{"UserID": "a"}]},
     bad("the body must have exactly one of Accounts or AccountList; both are present")),
    ("multiaccount_import", [], bad("the body must be a JSON object, not an array")),
    ("multiaccount_import", {"Accounts": ["a", 2]}, (60015, NUMBER.format("Accounts[1]"))),
    ("multiaccount_import", {"Accounts": ["a", None]},
     bad("Accounts[1] must be a string, not null")),
    ("multiaccount_import", {"AccountList": [{"Nick": "n"}]}, bad("AccountList[0].UserID is required")),
    ("multiaccount_import", {"Accounts": [f"u{i}" for i in range(101)]},
     bad("Accounts has 101 items; at most 100 are allowed per call")),
]


@pytest.mark.parametrize(("name", "body", "answer"), REFUSED)
def test_each_refusal_says_where_and_why(name: str, body: Any, answer: tuple[int, str]) -> None:
    for parse in (fresh(name), BY_NAME[name].parse):
        with pytest.raises(TimError) as info:
            parse(body)
        assert (info.value.code, info.value.info) == answer
        if name != "multiaccount_import":
            assert parse.from_json(json.dumps(body).encode()) is None


@pytest.mark.parametrize(("name", "body", "answer"), REFUSED[::3])
async def test_the_refusal_reaches_the_client(api, name: str, body: Any,
                                              answer: tuple[int, str]) -> None:
    data = await api.call(name, body)
    assert data == {"ActionStatus": "FAIL", "ErrorInfo": answer[1], "ErrorCode": answer[0]}


def test_what_is_accepted_at_the_edges() -> None:
    check = fresh("account_check")
    full = check({"CheckItem": ITEMS[:100]})
    assert [item.UserID for item in full.CheckItem] == [f"u{i}" for i in range(100)]
    assert check.from_json(json.dumps({"CheckItem": ITEMS[:100]}).encode()) == full
    assert check({"CheckItem": [{"UserID": "a", "x": 1}], "y": 2}).CheckItem == [m.UserRef(UserID="a")]
    one = fresh("account_import")
    assert one({"UserID": "a", "Identifier": "b"}) == m.AccountImportRequest(UserID="a")
    assert one({"Identifier": "b", "Nick": "n"}) == m.AccountImportRequest(UserID="b", Nick="n")
    assert one({"UserID": "a"}).Nick is UNSET
    assert fresh("kick")({"Identifier": "k"}) == m.KickRequest(UserID="k")
    multi = fresh("multiaccount_import")
    assert multi({"Accounts": ["a", "b"]}).Accounts == ["a", "b"]
    per_item = multi({"AccountList": [{"UserID": "a", "Nick": 5, "FaceUrl": None}]})
    assert per_item.AccountList == [m.AccountListItem(UserID="a", Nick=5, FaceUrl=None)]
    assert multi.from_json(b'{"Accounts":["a"]}') is None  # two forms: always the full parser
    assert fresh("account_delete").from_json(b'{"DeleteItem":[{"UserID":"\xc3\xa9"}]}') is None


class Counted(Struct, kw_only=True):
    Count: int
    Tags: list[str] | UnsetType = UNSET


def test_an_integer_field_and_a_list_of_strings() -> None:
    parse = RequestParser(Counted, max_items=2)
    assert parse({"Count": 3}) == Counted(Count=3)
    assert parse({"Count": 3, "Tags": ["a", "b"]}).Tags == ["a", "b"]
    for body, info in (({"Count": "3"}, "Count must be an integer, not a string"),
                       ({"Count": 3.0}, "Count must be an integer, not a number"),
                       ({"Count": True}, "Count must be an integer, not a boolean"),
                       ({"Count": 1, "Tags": ["a", 1]}, "Tags[1] must be a string, not a number"),
                       ({"Count": 1, "Tags": ["a"] * 3},
                        "Tags has 3 items; at most 2 are allowed per call")):
        with pytest.raises(TimError) as err:
            parse(body)
        assert (err.value.code, err.value.info) == bad(info)


class Inner(Struct, kw_only=True):
    Tags: list[str]


class Outer(Struct, kw_only=True):
    Items: list[Inner]
    One: Inner | UnsetType = UNSET


def test_nested_lists_keep_the_limit_and_the_path() -> None:
    parse = RequestParser(Outer, max_items=2)
    assert parse({"Items": [{"Tags": ["a", "b"]}], "One": {"Tags": ["c"]}}) == Outer(
        Items=[Inner(Tags=["a", "b"])], One=Inner(Tags=["c"]))
    for body, info in (({"Items": [{"Tags": ["a", "b", "c"]}]},
                        "Items[0].Tags has 3 items; at most 2 are allowed per call"),
                       ({"Items": [{"Tags": ["a"]}], "One": {"Tags": ["a"] * 3}},
                        "One.Tags has 3 items; at most 2 are allowed per call")):
        with pytest.raises(TimError) as err:
            parse(body)
        assert (err.value.code, err.value.info) == bad(info)


class Floating(Struct, kw_only=True):
    Ratio: float


class Maybe(Struct, kw_only=True):
    Name: str | None


@pytest.mark.parametrize(("request_type", "named"), [(Floating, "float"), (Maybe, "None")])
def test_a_field_the_parser_cannot_convert_is_refused_when_it_is_built(request_type: type,
                                                                      named: str) -> None:
    with pytest.raises(TypeError, match=f"^no request converter for .*{named}"):
        RequestParser(request_type, max_items=1)


class Grid(Struct, kw_only=True):
    Rows: list[list[str]]


def test_a_list_of_lists_takes_the_full_parser_and_its_limits() -> None:
    parse = RequestParser(Grid, max_items=2)
    assert parse({"Rows": [["a"], ["b", "c"]]}) == Grid(Rows=[["a"], ["b", "c"]])
    assert parse.from_json(b'{"Rows":[["a"]]}') is None  # no one-pass path for nested lists
    with pytest.raises(TimError) as err:
        parse({"Rows": [["a"], ["b", "c", "d"]]})
    assert (err.value.code, err.value.info) == bad("Rows[1] has 3 items; at most 2 are allowed per call")


class Single(Struct, kw_only=True):
    One: Inner


def test_a_list_inside_a_nested_object_is_checked_too() -> None:
    """msgspec alone would let the nested list through: the limit is the parser's to check."""
    parse = RequestParser(Single, max_items=2)
    assert parse({"One": {"Tags": ["a", "b"]}}) == Single(One=Inner(Tags=["a", "b"]))
    with pytest.raises(TimError) as err:
        parse({"One": {"Tags": ["a", "b", "c"]}})
    assert (err.value.code, err.value.info) == bad("One.Tags has 3 items; at most 2 are allowed per call")
    assert parse.from_json(b'{"One":{"Tags":["a","b","c"]}}') is None
