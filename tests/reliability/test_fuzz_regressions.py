"""Regression tests for the defects the fuzzers found (each failed before its fix).

* A client that closes its connection before its body has arrived made the body reader raise
  Starlette's ClientDisconnect: logged as an internal error with a traceback, counted 70500
  (fix: server/bodies.py answers 60008).
* A pipelined request still running when the connection was closed (a malformed request after
  it, a refused head) wrote its answer to the closed transport: "Exception in ASGI application"
  and a RuntimeError traceback (fix: server/httpguard.py marks it disconnected).
* A request line or headers of any size were buffered whole (50 MB of header: +46 MB RSS, no
  answer) (fix: server/httpguard.py, 431 past 64 KiB).
* On PostgreSQL, a NUL character reaching a query (``/_timserver/accounts?prefix=%00``, or a
  pasted UserSig whose TLS.identifier holds one, explained by the console) was a database error:
  70500 and a traceback (fix: server/console/params.py refuses control characters in text
  parameters, 70402; storage/postgres.py: no kick can be recorded for such an identifier).
* On PostgreSQL, a Nick or FaceUrl holding a NUL character (valid JSON, under 500 bytes) was a
  database error: 70500 and a traceback, while SQLite stored it (fix: service/rules.py refuses
  it on every backend, as a profile field it cannot store: 40601, or the account in
  FailAccounts; docs/protocol.md).
* A request target without a leading slash (``GET */healthz``, ``POST *``) matched no
  route: Starlette's plain-text 404 instead of the envelope (fix: server/asgi.py answers it like
  any unknown path, 60009).
* A request with ``Upgrade: websocket`` was handed to uvicorn's WebSocket implementation: 405
  or 403 in plain text instead of the envelope (fix: cli/serve.py runs uvicorn with ``ws="none"``;
  timserver has no WebSocket endpoint).
* The OpenAPI document said ``oneOf`` [the command's answer, ErrorResponse], but a failure's three
  fields match both for account_import and kick; and it did not declare the journal's NDJSON
  export (fix: server/openapi.py, server/console/openapi.py).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from reliability_support import (
    Server,
    admin_query,
    create_apps,
    create_apps_async,
    log_defects,
    v4_query,
)

from timserver.server.asgi import Settings
from timserver.server.openapi import openapi_document
from timserver.wiring import make_app

pytestmark = pytest.mark.slow


def _raw(port: int, payload: bytes, wait: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(payload)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionError):
            pass
    return received


@pytest.fixture
def live(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'regressions.db'}"
    (app,) = create_apps(db, [{"sdkappid": 1400007010}])
    server = Server(db, tmp_path, "--header-timeout", "2")
    yield server, app
    server.stop()


@pytest.mark.parametrize("path", ["/v4/im_open_login_svc/account_import", "/_timserver/accounts/import",
                                  "/_timserver/console/usersig/explain", "/_timserver/reset"])
async def test_a_client_gone_before_its_body_is_an_ordinary_60008(path: str, tmp_path: Path,
                                                                  caplog) -> None:
    db = f"sqlite:///{tmp_path / 'in-process.db'}"
    (app,) = await create_apps_async(db, [{"sdkappid": 1400007011}])
    asgi = make_app(Settings(db=db))
    query = (v4_query(app) if path.startswith("/v4") else admin_query(app)).encode()
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": query, "headers": [(b"host", b"localhost"),
                                                (b"content-length", b"100")],
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5555), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    events = [{"type": "http.request", "body": b'{"Accounts": [', "more_body": True},
              {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async with asgi.router.lifespan_context(asgi):
        with caplog.at_level(logging.INFO):
            await asgi(scope, receive, send)
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert body["ErrorCode"] == 60008
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_pipelined_request_cut_by_a_malformed_one_leaves_no_traceback(live) -> None:
    server, app = live

    def request(command: str, body: dict) -> bytes:
        data = json.dumps(body).encode()
        return (f"POST /v4/im_open_login_svc/{command}?{v4_query(app)} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data

    # a write (it waits for its commit), a second request queued behind it, then garbage
    for n in range(20):
        answer = _raw(server.port, request("account_import", {"UserID": f"p{n}"})
                      + request("account_check", {"CheckItem": [{"UserID": f"p{n}"}]})
                      + b"\x00GARBAGE\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 "), answer
    assert _raw(server.port, request("account_check", {"CheckItem": [{"UserID": "p0"}]}),
                ).startswith(b"HTTP/1.1 200")
    assert log_defects(server.log()) == []


@pytest.mark.parametrize("target", ["*", "*/healthz", "*/v4/im_open_login_svc/kick"])
def test_a_target_without_a_leading_slash_is_60009(live, target: str) -> None:
    server, _ = live
    for method, code in (("GET", 60009), ("POST", 60009), ("PUT", 60008)):
        answer = _raw(server.port, f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Content-Length: 2\r\nConnection: close\r\n\r\n{}".encode())
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["ErrorCode"] == code


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "OPTIONS"])
def test_an_upgrade_to_websocket_is_served_as_plain_http(live, method: str) -> None:
    server, app = live
    body = json.dumps({"CheckItem": [{"UserID": "x"}]}).encode()
    answer = _raw(server.port, (f"{method} /v4/im_open_login_svc/account_check?{v4_query(app)} "
                                "HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                f"Content-Length: {len(body)}\r\n\r\n").encode() + body, wait=1)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    if method in ("GET", "POST"):
        envelope = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert envelope["ErrorCode"] in (0, 60003), envelope  # (a body after an Upgrade is not read)
    assert log_defects(server.log()) == []


def test_an_endless_header_is_refused_431_and_holds_no_memory(live) -> None:
    server, _ = live
    before = server.rss_kib()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            for _ in range(800):  # 50 MiB, unless the server closes first
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
    assert sent < 50 * 1024 * 1024, "the server read on for ever"
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert server.rss_kib() - before < 8 * 1024, "the header was buffered"
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_a_body_trickled_after_the_answer_closes_the_connection(live) -> None:
    server, _ = live
    with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
        received, closed = b"", False
        for _ in range(12):  # keep trickling, a byte every 0.5 s for up to 6 s (limit: 2 s)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = None
            if chunk == b"":
                closed = True
                break
            received += chunk or b""
            try:
                sock.sendall(b"x")
            except OSError:
                closed = True
                break
            time.sleep(0.5)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert closed, "the connection stayed open for the rest of the body"


def test_every_answer_of_a_single_account_command_matches_the_document(tmp_path) -> None:
    server = make_app(Settings(db=f"sqlite:///{tmp_path / 'doc.db'}"))  # the served document:
    doc = openapi_document(server.state.pipeline.declared)  # with the plugins' endpoints
    for path in ("/v4/im_open_login_svc/account_import", "/v4/im_open_login_svc/kick"):
        schema = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        schema = {**schema["schema"], "components": doc["components"]}
        for answer in ({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0},
                       {"ActionStatus": "FAIL", "ErrorInfo": "Invalid parameters", "ErrorCode": 70402}):
            jsonschema.validate(answer, schema)  # a oneOf refused the failure (it matched both)
    journal = doc["paths"]["/_timserver/journal"]["get"]["responses"]["200"]["content"]
    assert "application/x-ndjson" in journal


async def test_a_nul_in_a_listing_parameter_is_70402_not_a_database_error(db_url: str) -> None:
    (app,) = await create_apps_async(db_url, [{"sdkappid": 1400007012}])
    asgi = make_app(Settings(db=db_url))
    async with asgi.router.lifespan_context(asgi):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://127.0.0.1") as client:
            for param in ("prefix=%00", "after=a%00b", "prefix=%1F"):
                data = (await client.get(f"/_timserver/accounts?{admin_query(app)}&{param}")).json()
                assert data["ErrorCode"] == 70402, (param, data)


async def test_a_usersig_for_an_identifier_with_a_nul_is_refused_not_a_database_error(
        db_url: str) -> None:
    from timserver import usersig

    (app,) = await create_apps_async(db_url, [{"sdkappid": 1400007013}])
    asgi = make_app(Settings(db=db_url))
    sig = usersig.generate(app.sdkappid, app.key, "adm\x00in", 3600, now=int(time.time()))
    async with asgi.router.lifespan_context(asgi):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://127.0.0.1") as client:
            explained = (await client.post("/_timserver/console/usersig/explain",
                                           json={"UserSig": sig})).json()
            assert explained["ErrorCode"] == 0 and explained["Valid"] is True, explained
            called = (await client.post(
                f"/v4/im_open_login_svc/account_check?sdkappid={app.sdkappid}&identifier="
                f"adm%00in&usersig={sig}&random=1&contenttype=json",
                json={"CheckItem": [{"UserID": "x"}]})).json()
            assert called["ErrorCode"] == 70403, called  # signed, but not an admin


async def test_a_nul_in_a_profile_field_is_refused_alike_on_every_backend(db_url: str) -> None:
    (app,) = await create_apps_async(db_url, [{"sdkappid": 1400007014}])
    asgi = make_app(Settings(db=db_url))
    v4 = "/v4/im_open_login_svc/"
    async with asgi.router.lifespan_context(asgi):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://127.0.0.1") as client:
            async def call(command: str, body: dict) -> dict:
                return (await client.post(f"{v4}{command}?{v4_query(app)}", json=body)).json()
            assert (await call("account_import", {"UserID": "n1", "Nick": "a\x00b"}))[
                "ErrorCode"] == 40601
            answer = await call("multiaccount_import", {"AccountList": [
                {"UserID": "n2", "FaceUrl": "\x00"}, {"UserID": "n3", "Nick": "ok"}]})
            assert answer["ErrorCode"] == 0 and answer["FailAccounts"] == ["n2"]
            check = await call("account_check", {"CheckItem": [{"UserID": u}
                                                               for u in ("n1", "n2", "n3")]})
            assert [i["AccountStatus"] for i in check["ResultItem"]] == \
                ["NotImported", "NotImported", "Imported"]


async def test_a_database_failure_is_one_log_line_not_a_traceback(tmp_path: Path,
                                                                   caplog) -> None:
    """During an outage every call fails: one warning each, no traceback (a flood otherwise)."""
    from timserver.storage import StorageError

    db = f"sqlite:///{tmp_path / 'outage.db'}"
    (app,) = await create_apps_async(db, [{"sdkappid": 1400007012}])
    asgi = make_app(Settings(db=db))
    path = "/v4/im_open_login_svc/account_check"
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": v4_query(app).encode(), "headers": [(b"host", b"localhost")],
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5555), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b'{"CheckItem":[{"UserID":"a"}]}'}

    async def send(message: dict) -> None:
        sent.append(message)

    async def unreachable(*_: object) -> set[str]:
        raise StorageError("SQLite: disk I/O error")

    async with asgi.router.lifespan_context(asgi):
        asgi.state.storage.existing = unreachable
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                await asgi(scope, receive, send)
    bodies = [json.loads(m["body"]) for m in sent if m["type"] == "http.response.body"]
    assert [b["ErrorCode"] for b in bodies] == [70500] * 3
    failures = [r for r in caplog.records if "storage failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.levelno == logging.WARNING for r in failures)
    assert "disk I/O error" in failures[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
