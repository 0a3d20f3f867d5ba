"""Kicks against a movable clock, reset and snapshots (docs/emulator.md, "Clock, expiry, kicks").

Invariants, each reproduced from an attack on the old code:
* a kick refuses every UserSig signed up to the moment of the kick by the wall clock or by the
  app's clock, whichever is later, wherever the app's clock is moved before or after;
* no sequence of clock moves and kicks leaves an admin with no way back short of a reset:
  ``timserver app unkick`` and ``app rotate-key`` recover;
* admins survive a reset or a snapshot restore, and so do their kicks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow  # servers in child processes

BODY = {"CheckItem": [{"UserID": "administrator"}]}
DAY = 86400


def code(server: TimServer, sig: str, identifier: str = "ops") -> int:
    answer = server.call("account_check", BODY, identifier=identifier, usersig=sig)
    return int(answer["ErrorCode"])


@pytest.fixture
def ops(tim_server: TimServer) -> Iterator[TimServer]:
    """``tim_server`` with a second admin, ``ops``, whose kicks the tests play with."""
    tim_server.call("account_import", {"UserID": "ops"})
    tim_server.cli("app", "set-admins", str(tim_server.sdkappid), "administrator", "ops")
    try:
        yield tim_server
    finally:
        tim_server.cli("app", "set-admins", str(tim_server.sdkappid), "administrator")
        tim_server.cli("app", "unkick", str(tim_server.sdkappid), "ops")


def test_a_leaked_sig_revived_by_the_clock_dies_with_the_kick(ops: TimServer) -> None:
    leaked = ops.usersig("ops", expire=60, now=int(time.time()) - DAY)  # a day-old 60 s sig
    assert code(ops, leaked) == 70001
    ops.set_clock(-DAY - 30)  # the emulator's nature: expiry follows the app's clock
    assert code(ops, leaked) == 0
    assert ops.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
    assert code(ops, leaked) == 70005
    for offset in (0, -3_000_000_000, -DAY - 30, 5 * DAY):  # no clock move revives it
        ops.set_clock(offset)
        assert code(ops, leaked) in (70005, 70001), offset
        if offset < 0:
            assert code(ops, leaked) == 70005, offset


def test_a_kick_ahead_of_the_wall_clock_can_be_undone(ops: TimServer) -> None:
    ops.set_clock(170 * DAY)
    assert ops.call("kick", {"UserID": "ops"}, usersig=ops.control_usersig())["ErrorCode"] == 0
    ops.set_clock(0)
    fresh = ops.usersig("ops")
    answer = ops.call("account_check", BODY, identifier="ops", usersig=fresh)
    assert answer["ErrorCode"] == 70005  # locked out until the kick's time, 170 days ahead
    done = ops.cli("app", "unkick", str(ops.sdkappid), "ops")
    assert "kick forgotten" in done.stdout
    assert code(ops, fresh) == 0
    assert "was not kicked" in ops.cli("app", "unkick", str(ops.sdkappid), "ops").stdout


def test_rotate_key_clears_the_kicks(tmp_path: Path) -> None:
    with start_server(folder=tmp_path) as server:
        server.set_clock(170 * DAY)
        kicked = server.call("kick", {"UserID": "administrator"}, usersig=server.control_usersig())
        assert kicked["ErrorCode"] == 0
        server.set_clock(0)
        assert code(server, server.usersig(), "administrator") == 70005
        rotated = server.cli("app", "rotate-key", str(server.sdkappid))
        server.key = rotated.stdout.split("Key:")[1].strip()
        assert code(server, server.usersig(), "administrator") == 0


def test_reset_keeps_admins_kicks(ops: TimServer) -> None:
    before = ops.usersig("ops", now=int(time.time()) - 60)
    assert ops.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
    assert code(ops, before) == 70005
    ops.reset()
    assert code(ops, before) == 70005  # ops is an admin: it stays, and so does its kick


def test_snapshot_restore_keeps_admins_kicks(ops: TimServer) -> None:
    ops.cli("snapshot", "save", "before-kick", "--force")
    before = ops.usersig("ops", now=int(time.time()) - 60)
    assert ops.call("kick", {"UserID": "ops"})["ErrorCode"] == 0
    ops.cli("snapshot", "restore", "before-kick")
    assert code(ops, before) == 70005  # the snapshot had no kick: the admin's kick stayed
    listed = json.loads(ops.cli("app", "show", str(ops.sdkappid), "--json").stdout)
    assert "ops" in listed["admins"]
