"""The request parser's fast path (msgspec.convert) answers exactly as its converter does: the
same struct for a valid body, the same ErrorCode and ErrorInfo for any other."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timserver.protocol.commands import COMMANDS, Command
from timserver.protocol.errors import TimError

pytestmark = pytest.mark.slow

names = st.sampled_from(["UserID", "Identifier", "Nick", "FaceUrl", "Accounts", "AccountList",
                         "CheckItem", "DeleteItem", "x"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                    st.text(max_size=4), st.sampled_from(["u1", "", "a" * 33, "\x01"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)), max_leaves=12)
items = st.one_of(st.fixed_dictionaries({"UserID": values}, optional={"Nick": values,
                                                                     "FaceUrl": values}), values)
bodies = st.one_of(values, st.dictionaries(names, st.one_of(
    values, st.lists(items, max_size=3), st.lists(st.just({"UserID": "u"}), min_size=99,
                                                  max_size=101)), max_size=3))


def outcome(parse: Any, body: Any) -> Any:
    try:
        return ("ok", parse(body))
    except TimError as err:
        return ("error", err.code, err.info)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_fast_path_equals_the_converter(cmd: Command, body: Any) -> None:
    slow = cmd.parse._convert
    one_of = cmd.parse._one_of

    def converter(value: Any) -> Any:
        if one_of and type(value) is dict:
            present = [k for k in one_of if k in value]
            if len(present) != 1:
                return cmd.parse(value)  # the same check, before either path
        return slow(value, "")
    assert outcome(cmd.parse, body) == outcome(converter, body)


json_texts = st.one_of(
    bodies.map(lambda b: __import__("json").dumps(b)),
    st.text(max_size=40),
    st.sampled_from(['{"CheckItem":[{"UserID":"a"}]} x', '{"CheckItem":[{"UserID":"a"}],'
                     '"CheckItem":[]}', '{"UserID":"a","UserID":"b"}', "", "[]", "{}",
                     '{"UserID":"\\u00e9"}', '{"UserID":"\\ud800"}', '{"Accounts":["a","a"]}']))


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
@settings(max_examples=300, deadline=None)
@given(text=json_texts)
def test_from_json_gives_what_decoding_then_parsing_gives(cmd: Command, text: str) -> None:
    """Wherever the one-pass path answers, it answers what the two-step path answers."""
    from timserver.server.bodies import decode_json

    body = text.encode("utf-8", "surrogatepass")
    fast = cmd.parse.from_json(body)
    if fast is None:
        return  # the caller takes the two-step path itself
    assert outcome(lambda b: cmd.parse(decode_json(b)), body) == ("ok", fast)


def test_from_json_takes_the_usual_bodies_and_leaves_the_rest() -> None:
    by_name = {c.name: c for c in COMMANDS}
    check = by_name["account_check"].parse
    ok = check.from_json(b'{"CheckItem":[{"UserID":"a"},{"UserID":"b","x":1}]}')
    assert ok is not None and [i.UserID for i in ok.CheckItem] == ["a", "b"]
    assert check.from_json(b'{"CheckItem":[]}') is None  # too few items: the parser says why
    assert check.from_json(b'{"CheckItem":[' + b",".join([b'{"UserID":"a"}'] * 101) + b"]}") is None
    assert check.from_json('{"CheckItem":[{"UserID":"é"}]}'.encode()) is None  # not ASCII
    assert check.from_json(b'{"CheckItem":[{"UserID":1}]}') is None
    assert by_name["multiaccount_import"].parse.from_json(b'{"Accounts":["a"]}') is None  # 2 forms
