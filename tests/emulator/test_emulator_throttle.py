"""serve --throttle-hints: 60007 also carries Retry-After and X-RateLimit-* headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "administrator"}]}


@pytest.fixture(scope="module")
def hinting(tmp_path_factory: Any) -> Iterator[TimServer]:
    server = start_server(args=["--throttle-hints"], folder=tmp_path_factory.mktemp("hints"))
    server.cli("app", "set-limit", str(server.sdkappid), "account_check", "3")
    try:
        yield server
    finally:
        server.stop()


def test_a_refused_call_carries_the_hints(hinting: TimServer) -> None:
    hinting.reset()
    responses = [hinting.post("account_check", BODY) for _ in range(4)]
    assert [r.json()["ErrorCode"] for r in responses] == [0, 0, 0, 60007]
    for accepted in responses[:3]:
        assert "retry-after" not in accepted.headers
    refused = responses[3]
    assert refused.status_code == 200
    headers = refused.headers
    assert headers["retry-after"] == "1"
    assert headers["x-ratelimit-limit"] == "3"
    assert headers["x-ratelimit-remaining"] == "0"
    assert 0 < float(headers["x-ratelimit-reset"]) <= 1.0
    # The body stays exactly Tencent's.
    assert list(refused.json()) == ["ActionStatus", "ErrorInfo", "ErrorCode"]
    assert refused.headers["content-type"] == "application/json; charset=utf-8"


def test_an_injected_60007_carries_the_hints_too(hinting: TimServer) -> None:
    hinting.reset()
    hinting.add_fault(command="kick", code=60007, times=1)
    hinting.call("account_import", {"UserID": "amy"})
    refused = hinting.post("kick", {"UserID": "amy"})
    assert refused.json()["ErrorCode"] == 60007
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-ratelimit-limit"] == "200"  # the app's kick rate


def test_without_the_flag_there_are_no_hints(tim_server: TimServer) -> None:
    tim_server.add_fault(command="account_check", code=60007, times=1)
    refused = tim_server.post("account_check", BODY)
    assert refused.json()["ErrorCode"] == 60007
    assert not [h for h in refused.headers if h.lower().startswith(("retry-after", "x-ratelimit"))]
