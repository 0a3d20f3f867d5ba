"""A UserSig made by this server never leaves for another host (docs/console.md).

Reproduced on the old code in Chromium: with "Signed by this server" and "Another host", the
debugger sent a server-signed admin UserSig (valid 1 h) to a capture server on another loopback
port, where it replayed fine.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from console_support import LIVE_APP
from support import KEY

from timserver import usersig

pytestmark = pytest.mark.slow  # servers in child processes


class _Capture(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).seen.append(self.path)
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = _answer

    def do_OPTIONS(self) -> None:
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def capture() -> Iterator[tuple[str, list[str]]]:
    _Capture.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}", _Capture.seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_signed_usersig_is_never_sent_elsewhere(page: Any,
                                                         capture: tuple[str, list[str]]) -> None:
    base, seen = capture
    assert page.is_checked("#signing-server")
    page.select_option("#endpoint-select", "custom")
    page.fill("#endpoint-custom", base)
    page.select_option("#command-select", "/v4/im_open_login_svc/account_check")
    page.click("#send")
    page.wait_for_selector("#send:not([disabled]):has-text('Send request')")
    assert "sent to this server only" in page.inner_text("#debug-error")
    assert seen == []

    # With a key typed in the page the call goes out: the capture server does see requests.
    page.check("#signing-key")
    page.fill("#key", KEY)
    page.click("#send")
    page.wait_for_selector("#response:not([hidden])")
    assert len(seen) == 1
    sig = parse_qs(urlparse(seen[0]).query)["usersig"][0]
    doc = usersig.decode(sig)
    assert doc.sdkappid == LIVE_APP
