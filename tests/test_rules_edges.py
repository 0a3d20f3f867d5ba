"""The edges of what makes a UserID and a profile field valid (docs/protocol.md §7.7), as a client sees them:
the exact limits, and the reason each refusal gives (found by mutation testing, docs/testing.md)."""

from __future__ import annotations

import pytest
from support import uid

from timserver.service.rules import userid_problem, userid_problems

TOO_LONG = "UserID is invalid: it is {} bytes long in UTF-8; at most 32 are allowed."
CONTROL = "UserID is invalid: it contains a control character."


async def check_one(api, user_id: str) -> dict:
    data = await api.call("account_check", {"CheckItem": [{"UserID": user_id}]})
    assert data["ErrorCode"] == 0, data
    (item,) = data["ResultItem"]
    assert item["UserID"] == user_id
    return item


@pytest.mark.parametrize(("user_id", "info"), [
    ("", "UserID is invalid: it is empty."),
    ("a" * 33, TOO_LONG.format(33)),
    ("é" * 16 + "a", TOO_LONG.format(33)),  # 17 characters, 33 bytes
    ("中" * 11, TOO_LONG.format(33)),
    ("a\x01b", CONTROL),
    ("é\x00", CONTROL),  # not ASCII: sized in UTF-8, then searched
    ("é\x1f", CONTROL),
    ("é\x7f", CONTROL),
])
async def test_each_refused_userid_says_why(api, user_id: str, info: str) -> None:
    assert await check_one(api, user_id) == {
        "UserID": user_id, "ResultCode": 70402, "ResultInfo": info, "AccountStatus": "NotImported"}
    data = await api.call("account_import", {"UserID": user_id})
    assert (data["ErrorCode"], data["ErrorInfo"]) == (
        70402, f"Invalid parameters: UserID {user_id!r} is invalid: {info[19:]}")


@pytest.mark.parametrize("user_id", [
    "a" * 32,
    "é" * 16,  # 16 characters, exactly 32 bytes
    "中" * 10 + "ab",
    "é\x80",  # C1 controls and other non-printables are not refused: only C0 and DEL are
    "\u2028x",
    "\xa0",
])
async def test_the_longest_and_the_unusual_userids_are_valid(api, user_id: str) -> None:
    assert (await api.call("account_import", {"UserID": user_id}))["ErrorCode"] == 0
    assert await check_one(api, user_id) == {
        "UserID": user_id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "Imported"}


async def test_a_batch_with_one_bad_userid_fails_that_item_alone(api) -> None:
    good = [uid() for _ in range(3)] + ["b" * 32]
    for bad, info in (("b" * 33, TOO_LONG.format(33)), ("", "UserID is invalid: it is empty.")):
        data = await api.call("account_check", {"CheckItem": [{"UserID": u} for u in [*good, bad]]})
        assert [(i["ResultCode"], i["ResultInfo"]) for i in data["ResultItem"]] == \
            [(0, "")] * 4 + [(70402, info)]


@pytest.mark.parametrize("field", ["Nick", "FaceUrl"])
async def test_profile_field_edges(api, field: str) -> None:
    for value in ("x" * 500, "é" * 250, "", "tab\tand\x01control"):  # only NUL is refused
        assert (await api.call("account_import", {"UserID": uid(), field: value}))["ErrorCode"] == 0
    for value, info in (
        ("x" * 501, f"{field} is 501 bytes long; at most 500 are allowed."),
        ("é" * 250 + "x", f"{field} is 501 bytes long; at most 500 are allowed."),
        ("a\x00b", f"{field} contains a NUL character (U+0000), which cannot be stored."),
        ("\x00", f"{field} contains a NUL character (U+0000), which cannot be stored."),
    ):
        data = await api.call("account_import", {"UserID": uid(), field: value})
        assert (data["ActionStatus"], data["ErrorCode"], data["ErrorInfo"]) == ("FAIL", 40601, info)


async def test_a_nul_in_a_profile_fails_that_item_of_a_batch(api) -> None:
    ok, nul, long_ = uid(), uid(), uid()
    data = await api.call("multiaccount_import", {"AccountList": [
        {"UserID": ok, "Nick": "x" * 500}, {"UserID": nul, "Nick": "a\x00"},
        {"UserID": long_, "FaceUrl": "x" * 501}]})
    assert data["FailAccounts"] == [nul, long_]


def test_userid_problems_takes_the_quick_path_only_when_every_id_is_usual() -> None:
    assert userid_problems([]) == []
    assert userid_problems(["a" * 32, "b"]) == [None, None]
    assert userid_problems(["a" * 32, "a" * 33]) == [None, userid_problem("a" * 33)]
    assert userid_problems(["a", ""]) == [None, "it is empty"]
    assert userid_problems(["a", "b\x01"]) == [None, "it contains a control character"]
    assert userid_problems(["é" * 16, "a"]) == [None, None]
    assert userid_problem("é" * 17) == "it is 34 bytes long in UTF-8; at most 32 are allowed"
