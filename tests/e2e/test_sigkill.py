"""Durability: whatever was answered OK survives a SIGKILL of the server (docs/protocol.md §7.8)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import TLSSigAPIv2
from support import LiveServer, cli

pytestmark = pytest.mark.slow


def test_acknowledged_imports_survive_sigkill(any_live_db: str) -> None:
    live_db = any_live_db
    app = json.loads(cli("app", "create", "--json", "--sdkappid", "1400000200", db=live_db).stdout)
    for name in ("account_import", "multiaccount_import", "account_check"):
        cli("app", "set-limit", "1400000200", name, "0", db=live_db)
    server = LiveServer(live_db)
    sig = TLSSigAPIv2.TLSSigAPIv2(app["sdkappid"], app["key"]).gen_sig("administrator")
    q = f"?sdkappid={app['sdkappid']}&identifier=administrator&usersig={sig}&random=7&contenttype=json"
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def importer(worker: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=5) as c:
            n = 0
            while not stop.is_set() and n < 5000:
                batch = [f"w{worker}_{n}_{i}" for i in range(10)]
                n += 1
                try:
                    if n % 2:
                        r = c.post("/v4/im_open_login_svc/multiaccount_import" + q,
                                   content=json.dumps({"Accounts": batch}))
                    else:
                        batch = batch[:1]
                        r = c.post("/v4/im_open_login_svc/account_import" + q,
                                   content=json.dumps({"UserID": batch[0]}))
                except httpx.TransportError:
                    return  # the server is gone
                data = r.json()
                if data["ErrorCode"] == 0 and not data.get("FailAccounts"):
                    with lock:
                        acknowledged.extend(batch)

    threads = [threading.Thread(target=importer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    server.kill()  # SIGKILL mid-stream
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acknowledged) > 100, "the stream should have been going for a while"

    restarted = LiveServer(live_db)
    try:
        missing = []
        with httpx.Client(base_url=restarted.base_url) as c:
            for i in range(0, len(acknowledged), 100):
                chunk = acknowledged[i:i + 100]
                r = c.post("/v4/im_open_login_svc/account_check" + q,
                           content=json.dumps({"CheckItem": [{"UserID": u} for u in chunk]}))
                missing += [it["UserID"] for it in r.json()["ResultItem"]
                            if it["AccountStatus"] != "Imported"]
        assert missing == [], f"{len(missing)} acknowledged accounts lost"
    finally:
        restarted.stop()
