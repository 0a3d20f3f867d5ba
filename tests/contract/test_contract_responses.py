"""§1.4, §1.5, §4.1, §4.5, §9 preamble: exact response envelopes.

(Every call made through the `api` helper also asserts HTTP 200, Content-Type
application/json; charset=utf-8, the three envelope fields, ErrorInfo empty on success
and non-empty on failure.)"""

import json

import pytest
from contract_support import SVC, uid

pytestmark = pytest.mark.slow

OPTIONAL_EXTRA = {"RequestId", "ErrorDisplay"}
ENVELOPE = {"ActionStatus", "ErrorInfo", "ErrorCode"}


def test_account_import_answers_envelope_only(api, dev):
    r = api.import_one(dev, uid())
    assert r.data["ActionStatus"] == "OK" and r.data["ErrorCode"] == 0 and r.data["ErrorInfo"] == ""
    assert set(r.data) - OPTIONAL_EXTRA == ENVELOPE


def test_kick_answers_envelope_only(api, dev):
    u = uid()
    api.import_one(dev, u)
    r = api.kick(dev, u)
    assert r.code == 0
    assert set(r.data) - OPTIONAL_EXTRA == ENVELOPE


def test_failure_envelope(api, dev):
    r = api.kick(dev, uid("ghost"))
    assert r.data["ActionStatus"] == "FAIL"
    assert r.data["ErrorCode"] == 70107
    assert isinstance(r.data["ErrorInfo"], str) and len(r.data["ErrorInfo"].strip()) > 3


def test_content_type_header_exact(api, dev):
    r = api.check(dev, ["x"])
    assert r.headers["content-type"].lower().replace(" ", "") == "application/json;charset=utf-8"


def test_body_is_utf8_json(api, dev):
    u = "名字" + uid()[:8]
    api.import_one(dev, u)
    r = api.check(dev, [u])
    assert json.loads(r.resp.content.decode("utf-8"))["ResultItem"][0]["UserID"] == u


@pytest.mark.parametrize(
    "path",
    ["/v4/nosvc/nocmd", "/v4/openim/sendmsg", f"/v4/{SVC}/account_import/extra"],
)
def test_unknown_paths_still_answer_json_envelope(api, server, path):
    from contract_support import assert_envelope

    resp = api.client.post(server.base_url + path, content=b"{}")
    assert_envelope(resp)
    assert resp.json()["ErrorCode"] == 60009


def test_get_put_answers_are_envelopes(api, server):
    from contract_support import assert_envelope

    resp = api.client.put(f"{server.base_url}/v4/{SVC}/account_check", content=b"{}")
    assert_envelope(resp)
    assert resp.json()["ErrorCode"] == 60008
