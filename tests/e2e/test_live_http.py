"""A real server process on a loopback port, driven over real HTTP."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import TLSSigAPIv2
from support import LiveServer, cli, uid

pytestmark = pytest.mark.slow

CHECK = "/v4/im_open_login_svc/account_check"


def create_app(db: str, *args: str) -> dict:
    import json

    return json.loads(cli("app", "create", "--json", *args, db=db).stdout)


@pytest.fixture
def env(any_live_db: str):
    live_db = any_live_db
    app = create_app(live_db, "--sdkappid", "1400000123")
    for name in ("account_import", "multiaccount_import", "account_delete", "account_check",
                 "kick"):
        cli("app", "set-limit", "1400000123", name, "0", db=live_db)
    server = LiveServer(live_db, "--body-timeout", "2")
    yield server, app
    server.stop()


def url(server: LiveServer, app: dict, command: str = "account_check", sig: str | None = None,
        identifier: str = "administrator") -> str:
    sig = sig or TLSSigAPIv2.TLSSigAPIv2(app["sdkappid"], app["key"]).gen_sig(identifier)
    return (f"{server.base_url}/v4/im_open_login_svc/{command}?sdkappid={app['sdkappid']}"
            f"&identifier={identifier}&usersig={sig}&random=1&contenttype=json")


def test_official_library_sig_accepted_over_http(env) -> None:
    server, app = env
    user = uid()
    with httpx.Client() as c:
        r = c.post(url(server, app, "account_import"), content=f'{{"UserID":"{user}"}}')
        assert r.json() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
        r = c.post(url(server, app), content=f'{{"CheckItem":[{{"UserID":"{user}"}}]}}')
        assert r.json()["ResultItem"][0]["AccountStatus"] == "Imported"
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.headers["access-control-allow-origin"] == "*"


def test_keep_alive_survives_rejected_and_oversized_bodies(env) -> None:
    server, app = env
    with httpx.Client() as c:
        for _ in range(3):
            r = c.post(url(server, app, sig="garbage"), content=b"x" * 200_000)
            assert r.json()["ErrorCode"] == 70003
            r = c.post(url(server, app), content=b"x" * (2 * 1024 * 1024))
            assert r.json()["ErrorCode"] == 60008
            r = c.post(url(server, app), content=b'{"CheckItem":[{"UserID":"administrator"}]}')
            assert r.json()["ErrorCode"] == 0


def test_cli_changes_reach_a_running_server(env) -> None:
    server, app = env
    body = b'{"CheckItem":[{"UserID":"administrator"}]}'
    old_sig = TLSSigAPIv2.TLSSigAPIv2(app["sdkappid"], app["key"]).gen_sig("administrator")
    assert httpx.post(url(server, app, sig=old_sig), content=body).json()["ErrorCode"] == 0
    cli("app", "rotate-key", str(app["sdkappid"]), db=server.db)
    assert httpx.post(url(server, app, sig=old_sig), content=body).json()["ErrorCode"] == 70009
    cli("app", "set-limit", str(app["sdkappid"]), "account_check", "1", db=server.db)
    import json

    new_key = json.loads(cli("app", "show", str(app["sdkappid"]), "--json", db=server.db).stdout)
    codes = [httpx.post(url(server, new_key), content=body).json()["ErrorCode"] for _ in range(3)]
    assert codes == [0, 60007, 60007]


def test_rate_limit_over_http_and_pacing(live_db: str) -> None:
    app = create_app(live_db, "--sdkappid", "1400000124")
    cli("app", "set-limit", "1400000124", "account_check", "20", db=live_db)
    server = LiveServer(live_db)
    body = b'{"CheckItem":[{"UserID":"administrator"}]}'
    try:
        with httpx.Client() as c:
            target = url(server, app)
            burst = [c.post(target, content=body).json()["ErrorCode"] for _ in range(30)]
            assert burst.count(0) == 20 and burst.count(60007) == 10
            assert burst[:20] == [0] * 20
            time.sleep(1.1)
            # paced at 95 % of the rate for 2 seconds: never refused
            interval, start, codes = 1 / 19, time.monotonic(), []
            for i in range(38):
                time.sleep(max(0.0, start + i * interval - time.monotonic()))
                codes.append(c.post(target, content=body).json()["ErrorCode"])
            assert codes == [0] * 38
    finally:
        server.stop()


def test_concurrent_burst_never_exceeds_the_limit(live_db: str) -> None:
    app = create_app(live_db, "--sdkappid", "1400000125")
    cli("app", "set-limit", "1400000125", "account_check", "50", db=live_db)
    server = LiveServer(live_db)
    body = b'{"CheckItem":[{"UserID":"administrator"}]}'
    target = url(server, app)
    accepted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client() as c:
            for _ in range(40):
                if c.post(target, content=body).json()["ErrorCode"] == 0:
                    with lock:
                        accepted.append(time.monotonic())
    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    accepted.sort()
    # Client-side receive times jitter a little: allow 50 ms of slack on the window.
    for i, t in enumerate(accepted):
        assert sum(1 for u in accepted[: i + 1] if u > t - 0.95) <= 50


def test_slow_and_broken_clients_get_answers_not_hangs(env) -> None:
    server, app = env
    # A body that never finishes: the server answers 60008 within its body timeout or closes.
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        path = url(server, app).split(str(server.port), 1)[1]
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        data = b""
        while b"}" not in data:  # the whole answer (headers and body may come apart)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert b"60008" in data or data == b""
    # Malformed HTTP: an HTTP-level 400, then the server still serves.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    r = httpx.post(url(server, app), content=b'{"CheckItem":[{"UserID":"administrator"}]}')
    assert r.json()["ErrorCode"] == 0


def test_workers_share_the_rate_limit(live_db: str) -> None:
    limit = 10  # far below what 6 clients send even on a loaded machine (~30 calls/s)
    app = create_app(live_db, "--sdkappid", "1400000126")
    cli("app", "set-limit", "1400000126", "account_check", str(limit), db=live_db)
    server = LiveServer(live_db, "--workers", "2")
    body = b'{"CheckItem":[{"UserID":"administrator"}]}'
    target = url(server, app)
    accepted: list[float] = []
    refused = 0
    lock = threading.Lock()

    def enough() -> bool:  # the limit reached and passed: however slow the machine
        with lock:
            return refused > 0 and len(accepted) >= limit

    def worker() -> None:  # new connections spread over both worker processes
        nonlocal refused
        for _ in range(80):  # bounded: 6 × 80 calls at the most
            if enough():
                return
            code = httpx.post(target, content=body, headers={"Connection": "close"},
                              timeout=30).json()["ErrorCode"]  # a worker may still be starting
            with lock:
                if code == 0:
                    accepted.append(time.monotonic())
                else:
                    assert code == 60007
                    refused += 1
    try:
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert refused > 0 and len(accepted) >= limit
    accepted.sort()
    for i, t in enumerate(accepted):  # with 50 ms of slack for client-side jitter
        assert sum(1 for u in accepted[: i + 1] if u > t - 0.95) <= limit
