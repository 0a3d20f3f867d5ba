"""Issue 12, item 12: a request head is refused past 64 KiB however it arrives, in one read
or many (docs/security.md: "Oversize input").

Before the fix, the chunk in which a head began was never counted, so a 100 KB header sent
in one write (read in one go by the server) was accepted.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from reliability_support import Server, check_envelope, create_apps, log_defects, sign

from timserver.server.httpguard import MAX_HEAD_BYTES

A = 1400007121
V4 = "/v4/im_open_login_svc/account_check"


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` in one write; everything answered until the server closes (or 5 s)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:  # closed by the server while we wrote: what came before still counts
            pass
    return answer


def _request(app, header_bytes: int, body: bytes) -> bytes:
    head = (f"POST {V4}?sdkappid={app.sdkappid}&identifier=administrator&usersig={sign(app)}"
            f"&random=1&contenttype=json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(body)}\r\n")
    filler = f"X-Filler: {'a' * max(0, header_bytes - len(head) - 14)}\r\n"
    return (head + filler + "\r\n").encode() + body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("head")
    db = f"sqlite:///{folder / 'head.db'}"
    (app,) = create_apps(db, [{"sdkappid": A}])
    srv = Server(db, folder, "--no-access-log")
    yield srv, app
    srv.stop()
    assert log_defects(srv.log()) == []


BODY = json.dumps({"CheckItem": [{"UserID": "administrator"}]}).encode()


def test_a_large_head_in_one_write_is_refused(server) -> None:
    srv, app = server
    for _ in range(5):  # every time, whatever the reads it arrived in
        answer = _exchange(srv.port, _request(app, 100 * 1024, BODY))
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_large_head_after_a_pipelined_request_in_the_same_write_is_refused(server) -> None:
    srv, app = server
    for _ in range(5):
        answer = _exchange(srv.port, _request(app, 500, BODY) + _request(app, 100 * 1024, BODY))
        # The first call may be answered before the connection is closed on the second; the
        # connection ends with the 431 either way, and nothing after it.
        assert b"HTTP/1.1 431 " in answer, answer[:400]
        assert b"HTTP/1.1 " not in answer.partition(b"HTTP/1.1 431 ")[2], answer[:400]


def test_a_head_just_under_the_cap_is_served(server) -> None:
    srv, app = server
    answer = _exchange(srv.port, _request(app, MAX_HEAD_BYTES - 1024, BODY))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert check_envelope(200, "application/json", body, {0})["ResultItem"][0][
        "AccountStatus"] == "Imported"
