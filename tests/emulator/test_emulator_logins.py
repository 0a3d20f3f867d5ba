"""``timserver.testing``'s helpers for login state and callbacks, against the session's server:
what a user's own tests would write (docs/emulator.md, "Simulated logins and callbacks")."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from timserver.testing import ControlError, TimServer

pytestmark = pytest.mark.slow


def test_logins_move_the_status_and_a_reset_forgets_them(tim_server: TimServer) -> None:
    assert tim_server.call("account_import", {"UserID": "ann"})["ErrorCode"] == 0
    assert tim_server.status("ann", "nobody") == {"ann": "Offline"}
    tim_server.login("ann", "iPhone")
    assert tim_server.status("ann") == {"ann": "Online"}
    tim_server.disconnect("ann")
    assert tim_server.status("ann") == {"ann": "PushOnline"}
    tim_server.advance_clock(7 * 86400 + 1)
    assert tim_server.status("ann") == {"ann": "Offline"}
    tim_server.login("ann", "Web")  # the iPhone, Offline for a day, is not logged out again
    assert [d["Platform"] for d in tim_server.logout("ann")["LoggedOut"]] == ["Web"]
    with pytest.raises(ControlError) as refused:
        tim_server.login("nobody", "Web")
    assert refused.value.answer["ErrorCode"] == 70107
    tim_server.login("ann", "PC")
    tim_server.reset()
    tim_server.call("account_import", {"UserID": "ann"})
    assert tim_server.status("ann") == {"ann": "Offline"}  # the reset took the devices too


def test_callbacks_reach_a_receiver_and_are_listed(tim_server: TimServer) -> None:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        tim_server.set_callback(f"http://127.0.0.1:{receiver.server_address[1]}/", "t0ken")
        tim_server.call("account_import", {"UserID": "bob"})
        tim_server.login("bob", "Android")
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [g["Info"]["Action"] for g in got] == ["Login"]
        (delivery,) = [d for d in tim_server.deliveries() if d["UserID"] == "bob"]
        assert delivery["Outcome"] == "delivered" and "OptPlatform=Android" in delivery["Url"]
    finally:
        tim_server.clear_callback()
        receiver.shutdown()
        receiver.server_close()
