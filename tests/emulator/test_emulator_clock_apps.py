"""The emulator clock is per app: one app's admin moves its own app's time, never another's.

Through real servers on SQLite and PostgreSQL (``any_live_db``), over HTTP: app A moves its clock
and its valid UserSig becomes 70001 while app B's stays valid on the same server; B's admin cannot
reach A's clock; the offsets survive a restart; kicks are stamped with the kicking app's time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timserver import usersig
from timserver.testing import ControlError, TimServer, start_server

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "administrator"}]}
ADMIN = "administrator"


class OtherApp:
    """App B on A's server: calls signed with B's key."""

    def __init__(self, server: TimServer, created: dict[str, Any]) -> None:
        self.server = server
        self.sdkappid: int = created["sdkappid"]
        self.key: str = created["key"]

    def usersig(self, identifier: str = ADMIN, expire: int = 86400, now: int | None = None) -> str:
        return usersig.generate(self.sdkappid, self.key, identifier, expire,
                                now=int(time.time()) if now is None else now)

    def call(self, command: str, body: Any, identifier: str = ADMIN,
             sig: str | None = None) -> dict[str, Any]:
        return self.server.call(command, body, sdkappid=str(self.sdkappid), identifier=identifier,
                                usersig=sig if sig is not None else self.usersig(identifier))

    def control(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                sdkappid: int | None = None, sig: str | None = None) -> dict[str, Any]:
        """A control call as B's admin (``sdkappid`` may name another app: an attempt)."""
        params = {"sdkappid": str(sdkappid or self.sdkappid), "identifier": ADMIN,
                  "usersig": sig or self.usersig()}
        return self.server.client.request(method, f"{self.server.base_url}{path}", params=params,
                                          json=body if method != "GET" else None).json()


def code_a(server: TimServer, sig: str) -> int:
    return server.call("account_check", BODY, usersig=sig)["ErrorCode"]


def code_b(other: OtherApp, sig: str) -> int:
    return other.call("account_check", BODY, sig=sig)["ErrorCode"]


@pytest.fixture
def two_apps(any_live_db: str, tmp_path: Path) -> Iterator[tuple[TimServer, OtherApp]]:
    """A server on each backend with two apps: A (the server's own) and B."""
    with start_server(db=any_live_db, folder=tmp_path) as server:
        created = json.loads(server.cli("app", "create", "--json").stdout)
        yield server, OtherApp(server, created)


def test_one_apps_clock_leaves_the_other_app_alone(two_apps: tuple[TimServer, OtherApp]) -> None:
    a, b = two_apps
    sig_a, sig_b = a.usersig(expire=60), b.usersig(expire=60)
    assert (code_a(a, sig_a), code_b(b, sig_b)) == (0, 0)

    answer = a.set_clock(61)
    assert answer["Offset"] == 61 and answer["ServerOffset"] == 0
    assert answer["Now"] - answer["WallClock"] in (60, 61, 62)
    assert code_a(a, sig_a) == 70001
    assert [code_b(b, sig_b) for _ in range(3)] == [0, 0, 0]  # B's time did not move
    seen_by_b = b.control("GET", "/_timserver/clock")
    assert seen_by_b["ErrorCode"] == 0 and seen_by_b["Offset"] == 0
    assert seen_by_b["Now"] - seen_by_b["WallClock"] in (-1, 0, 1)

    # The other way round: B moves its own clock; A's offset stays where A put it.
    assert b.control("POST", "/_timserver/clock", {"Advance": 61})["Offset"] == 61
    assert code_b(b, sig_b) == 70001
    a.set_clock(0)
    assert code_a(a, sig_a) == 0
    assert code_b(b, sig_b) == 70001
    assert a.control("GET", "/_timserver/clock")["Offset"] == 0


def test_b_cannot_touch_a_clock(two_apps: tuple[TimServer, OtherApp]) -> None:
    a, b = two_apps
    sig_a = a.usersig(expire=60)
    # B's UserSig presented for A: 70014; one signed with B's key in A's name: 70009.
    assert b.control("POST", "/_timserver/clock", {"Offset": 3600},
                     sdkappid=a.sdkappid)["ErrorCode"] == 70014
    forged = usersig.generate(a.sdkappid, b.key, ADMIN, 86400, now=int(time.time()))
    assert b.control("POST", "/_timserver/clock", {"Advance": 3600}, sdkappid=a.sdkappid,
                     sig=forged)["ErrorCode"] == 70009
    assert b.control("GET", "/_timserver/clock", sdkappid=a.sdkappid,
                     sig=forged)["ErrorCode"] == 70009
    assert a.control("GET", "/_timserver/clock")["Offset"] == 0
    assert code_a(a, sig_a) == 0

    # B's own moves and resets never reach A: A's offset stays, A's sig stays expired.
    a.set_clock(61)
    assert b.control("POST", "/_timserver/clock", {"Offset": -61})["ErrorCode"] == 0
    assert b.control("POST", "/_timserver/reset", {"Clock": True})["ErrorCode"] == 0
    assert a.control("GET", "/_timserver/clock")["Offset"] == 61
    assert code_a(a, sig_a) == 70001
    # ... and A's reset puts only A's clock back.
    b.control("POST", "/_timserver/clock", {"Offset": 61})
    a.reset()
    assert code_a(a, sig_a) == 0
    assert b.control("GET", "/_timserver/clock")["Offset"] == 61


def test_app_clocks_survive_a_restart(two_apps: tuple[TimServer, OtherApp]) -> None:
    a, b = two_apps
    sig_a, sig_b = a.usersig(expire=60), b.usersig(expire=60)
    a.set_clock(61)
    a.restart()
    assert a.control("GET", "/_timserver/clock")["Offset"] == 61
    assert code_a(a, sig_a) == 70001
    assert code_b(b, sig_b) == 0
    assert b.control("GET", "/_timserver/clock")["Offset"] == 0


def test_kicks_are_stamped_with_the_kicking_apps_time(
        two_apps: tuple[TimServer, OtherApp]) -> None:
    a, b = two_apps
    for app_id in (a.sdkappid, b.sdkappid):
        a.cli("app", "set-admins", str(app_id), ADMIN, "ops")
    now = int(time.time())
    a.set_clock(30)  # A's kicks are stamped at now + 30; B's clock stays the wall clock
    assert a.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
    assert b.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
    signed_between = now + 10  # before A's kick time, after B's
    assert a.call("account_check", BODY, identifier="ops",
                  usersig=a.usersig("ops", now=signed_between))["ErrorCode"] == 70005
    assert b.call("account_check", BODY, identifier="ops",
                  sig=b.usersig("ops", now=signed_between))["ErrorCode"] == 0
    # (a clock behind the wall clock stamps at the wall clock: tests/emulator/test_kick_invariants.py)


def test_the_server_wide_offset_adds_to_each_apps_own(tmp_path: Path) -> None:
    with start_server(args=["--clock-offset", "100000"], folder=tmp_path) as a:
        b = OtherApp(a, json.loads(a.cli("app", "create", "--json").stdout))
        sig_a, sig_b = a.usersig(expire=86400), b.usersig(expire=86400)
        assert (code_a(a, sig_a), code_b(b, sig_b)) == (70001, 70001)  # every app
        clock = a.control("GET", "/_timserver/clock")
        assert (clock["Offset"], clock["ServerOffset"]) == (0, 100000)
        assert clock["Now"] - clock["WallClock"] in (99999, 100000, 100001)
        # A's own offset, on top of the server-wide one: A is back to real time, B is not.
        answer = a.set_clock(-100000)
        assert answer["Now"] - answer["WallClock"] in (-1, 0, 1)
        assert (code_a(a, sig_a), code_b(b, sig_b)) == (0, 70001)
        # The total stays within the century the emulator allows.
        with pytest.raises(ControlError) as refused:
            a.set_clock(100 * 366 * 86400)
        assert refused.value.answer["ErrorCode"] == 70402
        assert "wall clock" in refused.value.answer["ErrorInfo"]
        assert a.control("GET", "/_timserver/clock")["Offset"] == -100000


def test_the_console_signs_and_explains_with_the_apps_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "clock-test-console-token-0123"
    monkeypatch.setenv("TIMSERVER_CONSOLE_TOKEN", token)
    with start_server(folder=tmp_path) as a:
        b = OtherApp(a, json.loads(a.cli("app", "create", "--json").stdout))
        a.set_clock(-3600)
        headers = {"X-Timserver-Console-Token": token}

        def sign(app_id: int) -> dict[str, Any]:
            return a.client.post(f"{a.base_url}/_timserver/console/usersig", headers=headers,
                                 json={"SDKAppID": app_id, "Identifier": ADMIN,
                                       "Expire": 60}).json()
        signed_a, signed_b = sign(a.sdkappid), sign(b.sdkappid)
        assert signed_a["ErrorCode"] == 0 and signed_b["ErrorCode"] == 0
        wall = time.time()
        assert abs(signed_a["Time"] - (wall - 3600)) <= 2  # A's time
        assert abs(signed_b["Time"] - wall) <= 2  # B's: the wall clock
        assert code_a(a, signed_a["UserSig"]) == 0  # valid by A's own time, though an hour old
        assert code_b(b, signed_b["UserSig"]) == 0

        def explain(sig: str) -> dict[str, Any]:
            return a.client.post(f"{a.base_url}/_timserver/console/usersig/explain",
                                 json={"UserSig": sig}).json()
        # A sig of B signed 2 minutes ago, valid 60 s: expired for B (the explanation uses B's
        # time, not A's, which is an hour behind).
        stale_b = b.usersig(expire=60, now=int(time.time()) - 120)
        told = explain(stale_b)
        assert told["Valid"] is False and told["Code"] == 70001
        assert abs(told["Now"] - time.time()) <= 2
        told = explain(a.usersig(expire=60, now=int(time.time()) - 3600))
        assert told["Valid"] is True and abs(told["Now"] - (time.time() - 3600)) <= 2
