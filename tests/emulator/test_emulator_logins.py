"""``timserver.testing``'s helpers for login state and callbacks, against the session's server:
what a user's own tests would write (docs/emulator.md, "Simulated logins and callbacks")."""

from __future__ import annotations

import time

import pytest

from timserver.testing import CallbackReceiver, ControlError, TimServer

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
    with CallbackReceiver() as receiver:
        try:
            tim_server.set_callback(receiver.url, "t0ken")
            tim_server.call("account_import", {"UserID": "bob"})
            tim_server.login("bob", "Android")
            got = receiver.wait_for(1, timeout=10)
            assert [g.body["Info"]["Action"] for g in got] == ["Login"]
            deadline = time.monotonic() + 10  # the sender records the answer after it came
            while True:
                (delivery,) = [d for d in tim_server.deliveries() if d["UserID"] == "bob"]
                if delivery["Outcome"] != "queued" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert delivery["Outcome"] == "delivered" and "OptPlatform=Android" in delivery["Url"]
        finally:
            tim_server.clear_callback()
