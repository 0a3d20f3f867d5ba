"""Security (docs/security.md), on each backend: refused UserSigs and non-admins on every
authenticated endpoint, cross-app access through every endpoint, the console's gates, oversize
requests, SQL-shaped and Unicode-edge UserIDs byte for byte, and no secret in the logs.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from reliability_support import (
    Server,
    check_envelope,
    create_apps,
    log_defects,
    record,
    sign,
)

from timserver.server.asgi import Settings
from timserver.storage import App
from timserver.wiring import make_app

pytestmark = pytest.mark.slow

TOKEN = "reliability-console-token-0123456789"
A, B = 1400007031, 1400007032
V4 = "/v4/im_open_login_svc/"

# (method, path, body, needs random/contenttype): every endpoint behind an admin's UserSig
AUTHENTICATED = [
    ("POST", V4 + "account_import", {"UserID": "sec_u1"}, True),
    ("POST", V4 + "multiaccount_import", {"Accounts": ["sec_u1"]}, True),
    ("POST", V4 + "account_delete", {"DeleteItem": [{"UserID": "sec_u1"}]}, True),
    ("POST", V4 + "account_check", {"CheckItem": [{"UserID": "sec_u1"}]}, True),
    ("POST", V4 + "kick", {"UserID": "sec_u1"}, True),
    ("GET", "/_timserver/accounts", None, False),
    ("POST", "/_timserver/accounts/import", {"Accounts": ["sec_u1"]}, False),
    ("POST", "/_timserver/accounts/delete", {"DeleteItem": [{"UserID": "sec_u1"}]}, False),
    ("POST", "/_timserver/accounts/kick", {"UserID": "sec_u1"}, False),
    ("GET", "/_timserver/journal", None, False),
    ("GET", "/_timserver/faults", None, False),
    ("POST", "/_timserver/faults", {"Command": "account_check", "Code": 70202}, False),
    ("POST", "/_timserver/faults/clear", {}, False),
    ("POST", "/_timserver/reset", {}, False),
    ("GET", "/_timserver/clock", None, False),
    ("POST", "/_timserver/clock", {"Advance": 0}, False),
]


def _url(path: str, app_id: int, identifier: str, sig: str, full: bool) -> str:
    url = f"{path}?sdkappid={app_id}&identifier={quote(identifier, safe='')}&usersig={sig}"
    return url + "&random=1&contenttype=json" if full else url


@pytest.fixture
async def apps(db_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, App, App]]:
    """Two apps (A with two admins) on an in-process server reached on loopback, with a token."""
    from reliability_support import create_apps_async

    a, b = await create_apps_async(db_url, [
        {"sdkappid": A, "admins": ["administrator", "second_admin"]},
        {"sdkappid": B}])
    asgi = make_app(Settings(db=db_url, console_token=TOKEN))
    async with asgi.router.lifespan_context(asgi):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, a, b


async def _call(client: httpx.AsyncClient, method: str, url: str, body: Any,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    content = json.dumps(body).encode() if body is not None else None
    resp = await client.request(method, url, content=content, headers=headers)
    return check_envelope(resp.status_code, resp.headers.get("content-type", ""), resp.content)


async def test_refused_usersigs_on_every_authenticated_endpoint(apps) -> None:
    client, a, b = apps
    now = int(time.time())
    # a kicked admin: its UserSig signed before the kick is refused (kick moves by whole seconds)
    old = sign(a, "second_admin", now=now - 10)
    kicked = await _call(client, "POST", _url(V4 + "kick", A, "administrator", sign(a), True),
                         {"UserID": "second_admin"})
    assert kicked["ErrorCode"] == 0
    cases = {
        "garbage": ("administrator", "not-a-usersig", 70003),
        "tampered": ("administrator", sign(a)[:-6] + "AAAAAA", None),  # 70003 or 70009
        "another key": ("administrator", sign(App(A, b.key, "developer", ("administrator",))),
                        70009),
        "expired": ("administrator", sign(a, expire=60, now=now - 3600), 70001),
        "another app": ("administrator", sign(b), 70014),
        "another identifier": ("administrator", sign(a, "second_admin"), 70013),
        "kicked": ("second_admin", old, 70005),
        "not an admin": ("plain_user", sign(a, "plain_user"), 70403),
        "empty": ("administrator", "", 70002),
    }
    seen = 0
    for method, path, body, full in AUTHENTICATED:
        for name, (identifier, sig, code) in cases.items():
            data = await _call(client, method, _url(path, A, identifier, sig, full), body)
            expected = {code} if code else {70003, 70009}
            assert data["ErrorCode"] in expected, (method, path, name, data)
            seen += 1
    assert seen == len(AUTHENTICATED) * len(cases)
    # nothing of it acted: the account was never imported, no fault rule was added
    check = await _call(client, "POST", _url(V4 + "account_check", A, "administrator", sign(a),
                                             True), {"CheckItem": [{"UserID": "sec_u1"}]})
    assert check["ResultItem"][0]["AccountStatus"] == "NotImported"
    rules = await _call(client, "GET", _url("/_timserver/faults", A, "administrator", sign(a),
                                            False), None)
    assert rules["Rules"] == []


async def test_no_endpoint_crosses_from_one_app_to_another(apps) -> None:
    client, a, b = apps
    # B's data: an account, a fault rule, a journal entry
    b_url = lambda path, full=False: _url(path, B, "administrator", sign(b), full)  # noqa: E731
    assert (await _call(client, "POST", b_url(V4 + "account_import", True),
                        {"UserID": "only_in_b"}))["ErrorCode"] == 0
    assert (await _call(client, "POST", b_url("/_timserver/faults"),
                        {"Command": "kick", "Code": 70202}))["ErrorCode"] == 0
    # A's admin, with A's valid UserSig, pointed at B: refused everywhere (the sig is A's)
    for method, path, body, full in AUTHENTICATED:
        data = await _call(client, method, _url(path, B, "administrator", sign(a), full), body)
        assert data["ErrorCode"] == 70014, (method, path, data)
    # A's admin on A's own endpoints sees nothing of B and changes nothing of B
    a_url = lambda path, full=False: _url(path, A, "administrator", sign(a), full)  # noqa: E731
    listed = await _call(client, "GET", a_url("/_timserver/accounts") + "&prefix=only", None)
    assert listed["Accounts"] == []
    check = await _call(client, "POST", a_url(V4 + "account_check", True),
                        {"CheckItem": [{"UserID": "only_in_b"}]})
    assert check["ResultItem"][0]["AccountStatus"] == "NotImported"
    deleted = await _call(client, "POST", a_url("/_timserver/accounts/delete"),
                          {"DeleteItem": [{"UserID": "only_in_b"}]})
    assert deleted["ResultItem"][0]["ResultCode"] == 70107
    assert (await _call(client, "POST", a_url(V4 + "kick", True),
                        {"UserID": "only_in_b"}))["ErrorCode"] == 70107
    assert (await _call(client, "GET", a_url("/_timserver/faults"), None))["Rules"] == []
    assert (await _call(client, "POST", a_url("/_timserver/faults/clear"), {}))["Deleted"] == 0
    assert (await _call(client, "POST", a_url("/_timserver/reset"), {}))["ErrorCode"] == 0
    journal = await _call(client, "GET", a_url("/_timserver/journal"), None)
    assert journal["Entries"] and all(e["SDKAppID"] == A for e in journal["Entries"])
    # B is intact: its account, its rule (which fires on B's kick, not on A's)
    check = await _call(client, "POST", b_url(V4 + "account_check", True),
                        {"CheckItem": [{"UserID": "only_in_b"}]})
    assert check["ResultItem"][0]["AccountStatus"] == "Imported"
    assert len((await _call(client, "GET", b_url("/_timserver/faults"), None))["Rules"]) == 1
    assert (await _call(client, "POST", b_url(V4 + "kick", True),
                        {"UserID": "only_in_b"}))["ErrorCode"] == 70202


async def test_console_gates(apps) -> None:
    client, a, _ = apps
    token = {"X-Timserver-Console-Token": TOKEN}
    wrong = {"X-Timserver-Console-Token": TOKEN[:-1] + "x"}
    sign_body = {"SDKAppID": A, "Identifier": "administrator"}
    for headers in (None, wrong):
        assert (await _call(client, "GET", "/_timserver/console/apps", None,
                            headers))["ErrorCode"] == 60004
        assert (await _call(client, "POST", "/_timserver/console/usersig", sign_body,
                            headers))["ErrorCode"] == 60004
        assert (await _call(client, "GET", "/_timserver/console/journal", None,
                            headers))["ErrorCode"] == 60004
    apps_listed = await _call(client, "GET", "/_timserver/console/apps", None, token)
    assert a.key not in json.dumps(apps_listed)  # never a key, even with the token
    signed = await _call(client, "POST", "/_timserver/console/usersig", sign_body, token)
    assert signed["UserSig"] and a.key not in json.dumps(signed)
    # a rebinding page (its own name in Host) or a LAN address: the console is not there
    for host in ("evil.example", "192.168.1.5", "localhost.evil.example"):
        for path in ("/_timserver/console/apps", "/_timserver/console/meta", "/console/"):
            resp = await client.get(path, headers={**token, "Host": host})
            assert check_envelope(resp.status_code, resp.headers["content-type"],
                                  resp.content)["ErrorCode"] == 60009, (host, path)


@pytest.mark.parametrize(("path", "limit"), [(V4 + "account_import", 1024 * 1024),
                                             ("/_timserver/accounts/kick", 32 * 1024),
                                             ("/_timserver/faults", 64 * 1024)])
async def test_oversize_bodies_are_60008_declared_or_streamed(apps, path: str, limit: int) -> None:
    client, a, _ = apps
    url = _url(path, A, "administrator", sign(a), path.startswith("/v4"))
    big = b'{"UserID": "' + b"a" * limit + b'"}'
    resp = await client.post(url, content=big)
    assert check_envelope(resp.status_code, resp.headers["content-type"],
                          resp.content)["ErrorCode"] == 60008

    async def stream():  # no Content-Length: counted while it streams
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536
    resp = await client.post(url, content=stream())
    assert check_envelope(resp.status_code, resp.headers["content-type"],
                          resp.content)["ErrorCode"] == 60008


EDGE_IDS = ["'; DROP TABLE accounts; --", "a' OR '1'='1", "\"quoted\"", "back\\slash", "%",
            "%25", "_", "a_b%c", "*", "NULL", "null", "0x41", " lead", "trail ", " ", "Ä",
            "e\u0301", "\u00e9", "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
            "\u202eevil", "\ufeffbom", "\u200b", "tab\u2028line", "ａｂｃ", "İ",
            "ß", "SS", "中文用户", "한국어", "עברית", "x" * 32, "é" * 16, "\U0001f600" * 8,
            "Administrator", "ADMINISTRATOR", "\u00a0nbsp"]


async def test_sql_shaped_and_unicode_edge_userids_are_stored_byte_for_byte(apps) -> None:
    client, a, _ = apps
    assert len(set(EDGE_IDS)) == len(EDGE_IDS)
    assert all(len(u.encode()) <= 32 for u in EDGE_IDS)
    a_url = lambda path, full=False: _url(path, A, "administrator", sign(a), full)  # noqa: E731
    imported = await _call(client, "POST", a_url(V4 + "multiaccount_import", True),
                           {"AccountList": [{"UserID": u, "Nick": u} for u in EDGE_IDS]})
    assert imported["FailAccounts"] == []
    check = await _call(client, "POST", a_url(V4 + "account_check", True),
                        {"CheckItem": [{"UserID": u} for u in EDGE_IDS]})
    assert [(i["UserID"], i["AccountStatus"]) for i in check["ResultItem"]] == \
        [(u, "Imported") for u in EDGE_IDS]
    # near misses are other accounts: no folding of case, width, normalisation or whitespace
    near = ["administrator ", "e\u0301 ", "E\u0301", "ss", "abc", "i\u0307", "%2", "__"]
    check = await _call(client, "POST", a_url(V4 + "account_check", True),
                        {"CheckItem": [{"UserID": u} for u in near]})
    assert all(i["AccountStatus"] == "NotImported" for i in check["ResultItem"])
    # listed exactly, with their Nicks; a prefix is literal (no LIKE wildcards)
    listed = await _call(client, "GET", a_url("/_timserver/accounts") + "&limit=200", None)
    stored = {x["UserID"]: x["Nick"] for x in listed["Accounts"] if not x["IsAdmin"]}
    assert stored == {u: u for u in EDGE_IDS}
    for prefix in ("%", "_", "'", "e\u0301"):
        page = await _call(client, "GET", a_url("/_timserver/accounts") + "&prefix="
                           + quote(prefix, safe=""), None)
        assert sorted(x["UserID"] for x in page["Accounts"]) == \
            sorted(u for u in EDGE_IDS if u.startswith(prefix)), prefix
    # the database is intact, and the IDs delete byte for byte
    deleted = await _call(client, "POST", a_url(V4 + "account_delete", True),
                          {"DeleteItem": [{"UserID": u} for u in EDGE_IDS]})
    assert [i["ResultCode"] for i in deleted["ResultItem"]] == [0] * len(EDGE_IDS)
    admin = await _call(client, "POST", a_url(V4 + "account_check", True),
                        {"CheckItem": [{"UserID": "administrator"}]})
    assert admin["ResultItem"][0]["AccountStatus"] == "Imported"


def test_no_key_usersig_or_token_in_the_logs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'logs.db'}"
    a, b = create_apps(db, [{"sdkappid": A}, {"sdkappid": B}])
    secrets_sent: list[str] = []
    for fmt in ("text", "json"):
        server = Server(db, tmp_path, "--log-format", fmt, log_level="debug",
                        env={"TIMSERVER_CONSOLE_TOKEN": TOKEN})
        try:
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                for app in (a, b):
                    for sig in (sign(app), sign(app)[:-5] + "AAAAA", sign(app, expire=1, now=1)):
                        secrets_sent.append(sig)
                        for method, path, body, full in AUTHENTICATED:
                            if path == "/_timserver/reset":
                                continue
                            url = f"{path}?sdkappid={app.sdkappid}&identifier=administrator" \
                                  f"&usersig={sig}" + ("&random=1&contenttype=json" if full else "")
                            client.request(method, url, content=json.dumps(body) if body else None)
                signed = client.post("/_timserver/console/usersig", json={
                    "SDKAppID": A, "Identifier": "administrator"},
                    headers={"X-Timserver-Console-Token": TOKEN}).json()["UserSig"]
                secrets_sent.append(signed)
                client.post("/_timserver/console/usersig/explain", json={"UserSig": signed})
                client.get("/_timserver/console/journal", headers={
                    "X-Timserver-Console-Token": TOKEN})
                journal = client.get(f"/_timserver/journal?sdkappid={A}&identifier="
                                     f"administrator&usersig={sign(a)}&format=ndjson").text
                metrics = client.get("/metrics").text
        finally:
            server.stop()
        log = server.log()
        assert "timserver.access" in log or '"timserver.access"' in log, "the access log ran"
        for text, where in ((log, f"{fmt} log"), (journal, "journal"), (metrics, "metrics")):
            for secret in (a.key, b.key, *secrets_sent):
                assert secret not in text, f"a secret in the {where}"
            for sig in secrets_sent:  # not even a long piece of one
                assert sig[20:60] not in text, f"part of a UserSig in the {where}"
        token_lines = [line for line in log.splitlines() if TOKEN in line]
        assert len(token_lines) == 1 and token_lines[0].startswith("Web console:"), token_lines
        assert log_defects(log) == []


def test_slow_clients_are_cut_and_others_are_served(tmp_path: Path) -> None:
    """Slowloris: 300 connections sending their headers a byte at a time, plus 100 that send
    nothing. Others are answered meanwhile, each within a second; the slow ones are cut at the
    header timeout (408), and the server's descriptors come back to where they were."""
    db = f"sqlite:///{tmp_path / 'slow.db'}"
    (a,) = create_apps(db, [{"sdkappid": A}])
    server = Server(db, tmp_path, "--header-timeout", "3", "--no-access-log")
    try:
        baseline = server.open_fds()
        head = f"POST {V4}account_check?sdkappid={A}&identifier=administrator HTTP/1.1\r\n" \
               "Host: 127.0.0.1\r\nContent-Length: 100\r\nX-Slow: "
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
        for s in slow + silent:
            s.setblocking(False)
        started = time.monotonic()
        peak = server.open_fds()
        latencies, closed_at = [], {}
        body = json.dumps({"CheckItem": [{"UserID": "administrator"}]})
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            i = 0
            while time.monotonic() - started < 7 and len(closed_at) < len(slow) + len(silent):
                for n, s in enumerate(slow + silent):
                    if n in closed_at:
                        continue
                    try:
                        if n < len(slow):
                            s.send(head[i % len(head)].encode())
                        data = s.recv(4096)
                        if data == b"" or data.startswith(b"HTTP/1.1 408"):
                            closed_at[n] = time.monotonic() - started
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[n] = time.monotonic() - started
                i += 1
                t0 = time.monotonic()
                resp = client.post(f"{V4}account_check?sdkappid={A}&identifier=administrator"
                                   f"&usersig={sign(a)}&random=1&contenttype=json", content=body)
                latencies.append(time.monotonic() - t0)
                assert check_envelope(resp.status_code, resp.headers["content-type"],
                                      resp.content)["ResultItem"][0]["AccountStatus"] == "Imported"
                peak = max(peak, server.open_fds())
                time.sleep(0.2)
        for s in slow + silent:
            s.close()
        assert len(closed_at) == len(slow) + len(silent), "some slow connections were never cut"
        assert max(closed_at.values()) < 3 + 2.5, "cut at the header timeout"
        assert max(latencies) < 1.0, f"others waited {max(latencies):.2f} s"
        assert peak <= baseline + len(slow) + len(silent) + 10
        time.sleep(0.5)
        assert server.open_fds() <= baseline + 2, "the cut connections are released"
        assert server.alive() and log_defects(server.log()) == []
        record("slowloris", connections=len(slow) + len(silent), header_timeout_s=3,
               cut_after_s=round(max(closed_at.values()), 2), others_max_latency_s=round(
                   max(latencies), 3), fds_baseline=baseline, fds_peak=peak)
    finally:
        server.stop()
