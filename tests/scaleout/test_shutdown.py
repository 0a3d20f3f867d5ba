"""Graceful shutdown: SIGTERM lets in-flight calls finish before the process exits."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
import TLSSigAPIv2
from support import LiveServer, cli

pytestmark = pytest.mark.slow


def test_sigterm_finishes_in_flight_requests(any_live_db: str) -> None:
    db = any_live_db
    app = json.loads(cli("app", "create", "--json", "--sdkappid", "1400000600", db=db).stdout)
    # Make the call slow on purpose: 1.5 s of injected latency, so it is in flight at SIGTERM.
    cli("faults", "add", "--sdkappid", "1400000600", "--command", "account_import",
        "--latency-ms", "1500", db=db)
    server = LiveServer(db)
    sig = TLSSigAPIv2.TLSSigAPIv2(app["sdkappid"], app["key"]).gen_sig("administrator")
    url = (f"{server.base_url}/v4/im_open_login_svc/account_import?sdkappid={app['sdkappid']}"
           f"&identifier=administrator&usersig={sig}&random=1&contenttype=json")
    answers: list[dict] = []

    def call() -> None:
        answers.append(httpx.post(url, content=b'{"UserID":"in_flight"}', timeout=15).json())

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.5)  # the call is now waiting inside the server
    server.proc.send_signal(signal.SIGTERM)
    caller.join(timeout=15)
    server.proc.wait(timeout=15)
    assert answers == [{"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}]
    assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    # and the answered import is there
    cli("faults", "clear", "--sdkappid", "1400000600", db=db)
    restarted = LiveServer(db)
    try:
        check = url.replace("account_import", "account_check").replace(server.base_url,
                                                                        restarted.base_url)
        r = httpx.post(check, content=b'{"CheckItem":[{"UserID":"in_flight"}]}')
        assert r.json()["ResultItem"][0]["AccountStatus"] == "Imported"
    finally:
        restarted.stop()
