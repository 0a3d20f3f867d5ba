"""Whatever arrives, the answer is a Tencent envelope with a documented code (hypothesis)."""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import query

from timserver.protocol.errors import CATALOGUE

pytestmark = pytest.mark.slow

PATHS = ["/v4/im_open_login_svc/account_import", "/v4/im_open_login_svc/multiaccount_import",
         "/v4/im_open_login_svc/account_delete", "/v4/im_open_login_svc/account_check",
         "/v4/im_open_login_svc/kick"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=5),
    max_leaves=30)
field_names = st.sampled_from(["UserID", "Identifier", "Nick", "FaceUrl", "Accounts",
                               "AccountList", "CheckItem", "DeleteItem", "x"])
shaped_bodies = st.dictionaries(field_names, json_values | st.lists(
    st.dictionaries(field_names, json_values, max_size=4), max_size=4), max_size=4)

relaxed = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_envelope(resp) -> dict:
    assert resp.status_code == 200
    data = resp.json()
    assert data["ActionStatus"] in ("OK", "FAIL")
    assert isinstance(data["ErrorInfo"], str) and isinstance(data["ErrorCode"], int)
    if data["ActionStatus"] == "OK":
        assert data["ErrorCode"] == 0
    else:
        assert data["ErrorCode"] in CATALOGUE and data["ErrorInfo"]
    return data


@relaxed
@given(path=st.sampled_from(PATHS), body=shaped_bodies)
async def test_shaped_json_bodies(client, app, path, body) -> None:
    check_envelope(await client.post(path, params=query(app), content=json.dumps(body)))


@relaxed
@given(path=st.sampled_from(PATHS), body=json_values)
async def test_any_json_value(client, app, path, body) -> None:
    check_envelope(await client.post(path, params=query(app), content=json.dumps(body)))


@relaxed
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=300))
async def test_any_bytes(client, app, path, body) -> None:
    data = check_envelope(await client.post(path, params=query(app), content=body))
    assert data["ErrorCode"] in (0, 60003, 60015, 70402, 40601, 70107, 71000)


@relaxed
@given(params=st.dictionaries(st.sampled_from(["sdkappid", "identifier", "usersig", "random",
                                                "contenttype", "SDKAPPID", ""]),
                              st.text(max_size=30), max_size=6),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.sampled_from([*PATHS, "/", "/v4/x/y", "/v4/openim/sendmsg"]))
async def test_any_query_and_method(client, app, params, method, path) -> None:
    check_envelope(await client.request(method, path, params=params, content=b"{}"))


@relaxed
@given(raw=st.binary(max_size=200))
async def test_any_raw_query_string(client, app, raw) -> None:
    # Any bytes reach the server's decoder once percent-encoded (only & and = kept raw).
    resp = await client.post(PATHS[3] + "?" + quote_from_bytes(raw, safe="&="), content=b"{}")
    check_envelope(resp)


async def test_huge_and_deep_bodies(client, app) -> None:
    for body in (b"[" * 500_000, b'{"a":' * 200_000, b'"' + b"x" * 1_100_000 + b'"',
                 json.dumps({"CheckItem": [{"UserID": "a"}] * 50_000}).encode()):
        data = check_envelope(await client.post(PATHS[3], params=query(app), content=body))
        assert data["ErrorCode"] in (60003, 60008, 70402)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40),
    st.sampled_from(["", "a" * 32, "a" * 33, "é" * 16, "é" * 17, "a\x7f", " "])), max_size=12))
def test_userid_problems_is_userid_problem_of_each(ids: list[str]) -> None:
    from timserver.service.rules import userid_problem, userid_problems

    assert userid_problems(ids) == [userid_problem(uid) for uid in ids]
