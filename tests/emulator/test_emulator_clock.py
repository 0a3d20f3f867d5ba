"""The controllable clock, and the emulator's state shared by worker processes.

Per-app isolation of the clock, on both backends: test_emulator_clock_apps.py.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from timserver import usersig
from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "administrator"}]}


def code_with(server: TimServer, sig: str) -> int:
    return server.call("account_check", BODY, usersig=sig)["ErrorCode"]


def test_clock_offset_turns_a_valid_sig_into_70001(tim_server: TimServer) -> None:
    sig = tim_server.usersig(expire=60)
    assert code_with(tim_server, sig) == 0
    answer = tim_server.set_clock(61)
    assert answer["Offset"] == 61 and answer["ServerOffset"] == 0
    assert answer["Now"] - answer["WallClock"] in (60, 61, 62)
    assert code_with(tim_server, sig) == 70001
    tim_server.set_clock(0)
    assert code_with(tim_server, sig) == 0
    tim_server.advance_clock(30)
    tim_server.advance_clock(31)
    assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 61
    assert code_with(tim_server, sig) == 70001


def other_code(server: TimServer, other: dict[str, Any], sig_expire: int) -> int:
    sig = usersig.generate(other["sdkappid"], other["key"], "administrator", sig_expire,
                           now=int(time.time()))
    return server.call("account_check", BODY, sdkappid=str(other["sdkappid"]),
                       usersig=sig)["ErrorCode"]


def test_the_cli_moves_the_server_wide_clock(tim_server: TimServer,
                                             second_app: dict[str, Any]) -> None:
    sig = tim_server.usersig(expire=3600)
    try:
        out = tim_server.cli("clock", "set", "7200").stdout  # the operator's: every app
        assert "+7200 s" in out
        assert code_with(tim_server, sig) == 70001
        assert other_code(tim_server, second_app, 3600) == 70001
        assert tim_server.control("GET", "/_timserver/clock")["ServerOffset"] == 7200
        tim_server.cli("clock", "advance", "-7200")
        assert code_with(tim_server, sig) == 0
        assert other_code(tim_server, second_app, 3600) == 0
        assert "+0 s" in tim_server.cli("clock", "show").stdout
        bad = tim_server.cli("clock", "set", "1e12", check=False)
        assert bad.returncode != 0 and "offset" in bad.stderr
    finally:
        tim_server.cli("clock", "set", "0")


def test_the_cli_moves_one_apps_clock(tim_server: TimServer, second_app: dict[str, Any]) -> None:
    app = str(tim_server.sdkappid)
    sig = tim_server.usersig(expire=3600)
    out = tim_server.cli("clock", "set", "7200", "--sdkappid", app).stdout
    assert f"App {app} clock offset: +7200 s" in out
    assert code_with(tim_server, sig) == 70001
    assert other_code(tim_server, second_app, 3600) == 0  # the other app keeps its time
    assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 7200
    shown = tim_server.cli("clock", "show").stdout
    assert "Clock offset: +0 s" in shown and f"App {app} clock offset: +7200 s" in shown
    assert str(second_app["sdkappid"]) not in shown  # no offset of its own: not listed
    tim_server.cli("clock", "advance", "-7199", "--sdkappid", app)
    assert code_with(tim_server, sig) == 0
    assert "+1 s" in tim_server.cli("clock", "show", "--sdkappid", app).stdout
    unknown = tim_server.cli("clock", "set", "5", "--sdkappid", "999", check=False)
    assert unknown.returncode != 0 and "no app" in unknown.stderr
    tim_server.cli("reset", "--sdkappid", app, "--clock")
    assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 0


def test_kicks_use_the_shifted_clock(tim_server: TimServer) -> None:
    tim_server.call("account_import", {"UserID": "ops"})
    tim_server.cli("app", "set-admins", str(tim_server.sdkappid), "administrator", "ops")
    try:
        tim_server.set_clock(-30)  # the app's time is 30 s behind the wall clock
        now = int(time.time())
        before = tim_server.usersig("ops", now=now - 60)
        fresh = tim_server.usersig("ops", now=now)
        assert tim_server.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
        assert tim_server.call("account_check", BODY, identifier="ops",
                               usersig=before)["ErrorCode"] == 70005
        # The kick holds at the later of the two clocks: a sig signed by the wall clock up to the
        # kick is refused though the app's clock is behind (a moved clock never revives one).
        assert tim_server.call("account_check", BODY, identifier="ops",
                               usersig=fresh)["ErrorCode"] == 70005
        after = tim_server.usersig("ops", now=int(time.time()) + 2)
        assert tim_server.call("account_check", BODY, identifier="ops",
                               usersig=after)["ErrorCode"] == 0
    finally:
        tim_server.cli("app", "set-admins", str(tim_server.sdkappid), "administrator")


def test_serve_clock_offset(tmp_path: Path) -> None:
    with start_server(args=["--clock-offset", "100000"], folder=tmp_path) as server:
        assert code_with(server, server.usersig(expire=86400)) == 70001
        assert code_with(server, server.usersig(expire=200000)) == 0
        clock = server.control("GET", "/_timserver/clock")
        assert (clock["Offset"], clock["ServerOffset"]) == (0, 100000)  # server-wide, not the app's
        assert "Clock offset: +100000 s" in server.logs()
        # Stored: a restart without the option keeps it (timserver clock set 0 clears it).
        server.args = []
        server.restart()
        assert code_with(server, server.usersig(expire=86400)) == 70001
        server.cli("clock", "set", "0")
        assert code_with(server, server.usersig(expire=86400)) == 0


# --- two worker processes share the rules, their counts and the clock ------------------------------


def served_by(server: TimServer, since: float, calls: int) -> dict[int, list[int]]:
    """ErrorCodes of the account_check calls each worker answered since ``since``, by the pid
    in the entries' Id (any worker's journal read shows every worker's calls)."""
    seen: dict[int, list[int]] = {}
    for _ in range(50):  # a worker writes its journal's copy within 0.2 s of a call
        answer = httpx.get(f"{server.base_url}/_timserver/journal",
                           params={"sdkappid": str(server.sdkappid), "identifier": server.admin,
                                   "usersig": server.usersig(), "limit": "1000"}).json()
        seen = {}
        for e in answer["Entries"]:
            if e["Command"] == "account_check" and e["Time"] >= since:
                seen.setdefault(int(e["Id"].split("-")[0]), []).append(e["ErrorCode"])
        if sum(len(c) for c in seen.values()) >= calls:
            break
        time.sleep(0.1)
    return seen


def test_next_n_is_exact_across_workers(two_workers: TimServer) -> None:
    two_workers.reset()
    two_workers.add_fault(command="account_check", code=70202, times=5)
    since = time.time() - 0.01

    def call(_: int) -> int:  # a new connection per call: the workers share the calls
        return httpx.post(two_workers.url("account_check"), json=BODY).json()["ErrorCode"]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(40)))
    assert sorted(codes) == [0] * 35 + [70202] * 5
    (rule,) = two_workers.faults()
    assert (rule["Remaining"], rule["Matched"]) == (0, 5)
    workers = served_by(two_workers, since, 40)
    assert len(workers) == 2 and all(workers.values()), workers  # both workers took calls
    assert sum(len(c) for c in workers.values()) == 40
    assert sum(c.count(70202) for c in workers.values()) == 5


def test_workers_share_the_clock_and_cli_rules(two_workers: TimServer) -> None:
    two_workers.reset()
    sig = two_workers.usersig(expire=60)
    two_workers.set_clock(120)
    with ThreadPoolExecutor(8) as pool:
        codes = set(pool.map(lambda _: code_with(two_workers, sig), range(24)))
    assert codes == {70001}
    two_workers.cli("clock", "set", "0", "--sdkappid", str(two_workers.sdkappid))
    with ThreadPoolExecutor(8) as pool:
        codes = set(pool.map(lambda _: code_with(two_workers, sig), range(24)))
    assert codes == {0}
    other = json.loads(two_workers.cli("app", "create", "--json").stdout)
    two_workers.cli("clock", "set", "120", "--sdkappid", str(other["sdkappid"]))
    with ThreadPoolExecutor(8) as pool:  # every worker: the other app's clock only
        codes = set(pool.map(lambda _: code_with(two_workers, sig), range(24)))
        theirs = set(pool.map(lambda _: other_code(two_workers, other, 60), range(24)))
    assert (codes, theirs) == ({0}, {70001})
    two_workers.cli("faults", "add", "--sdkappid", str(two_workers.sdkappid), "--code", "70500")
    with ThreadPoolExecutor(8) as pool:
        codes = set(pool.map(lambda _: code_with(two_workers, sig), range(24)))
    assert codes == {70500}
    two_workers.reset()
    with ThreadPoolExecutor(8) as pool:
        codes = set(pool.map(lambda _: code_with(two_workers, sig), range(24)))
    assert codes == {0}
