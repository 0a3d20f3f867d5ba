"""What a request can do to the records: the access log, the JSON log and the journal.

Reproduced on the old code: ``identifier=x%0A2026-12-02 ...`` forged an access-log line, escape
bytes in the path reached the log, 20 requests with 60 KB identifiers added 1.2 MB of log and
1,000 added 42 MB to the journal's memory. Every request-derived text is now clipped and made
printable once, when recorded (``observability.clip``), and an identifier over 256 bytes is
refused (60004) before anything else is done with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import LiveServer, query

from timserver.server.dispatch import MAX_IDENTIFIER_BYTES
from timserver.server.journal import Journal
from timserver.server.observability import RECORDED_CHARS, clip
from timserver.storage import App

pytestmark = pytest.mark.slow  # servers in child processes


@pytest.fixture(params=["text", "json"])
def logged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, App]]:
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'log.db'}"
    made = json.loads(subprocess.run(
        [sys.executable, "-m", "timserver", "app", "create", "--json", "--db", db],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    app = App(sdkappid=made["sdkappid"], key=made["key"], edition="developer",
              admins=("administrator",))
    server = LiveServer(db, "--log-level", "info", "--log-format", str(request.param))
    try:
        yield server, app
    finally:
        server.stop()


def test_no_request_can_forge_or_flood_a_log_line(logged: tuple[LiveServer, App]) -> None:
    server, app = logged
    url = f"{server.base_url}/v4/im_open_login_svc/account_check"
    forged = "x\n2026-12-02 04:00:00,000 timserver.access POST /v4/forged code=0"
    httpx.post(url, params=query(app, identifier=forged, sig="x"), content=b"{}")
    raw = (f"{server.base_url}/v4/im_open_login_svc/acc%1b[31mount_check?"
           f"sdkappid={app.sdkappid}&identifier=a%0d%0ab&usersig=x&random=1&contenttype=json")
    assert httpx.post(raw, content=b"{}").json()["ErrorCode"] == 60009
    before = len(server.output())
    for _ in range(20):
        answer = httpx.post(url, params=query(app, identifier="i" * 60_000, sig="x"),
                            content=b"{}").json()
        assert answer["ErrorCode"] == 60004
    grown = len(server.output()) - before
    log = server.output()
    assert "\x1b" not in log and "\r" not in log
    assert not any(line.startswith("2026-12-02 04:00:00,000 timserver.access POST /v4/forged")
                   for line in log.splitlines())
    assert "/v4/forged" in log  # recorded, on the line of the call that carried it
    assert grown < 20 * 1000  # each call one bounded line, not 60 KB


def test_an_identifier_over_the_limit_is_refused(logged: tuple[LiveServer, App]) -> None:
    server, app = logged
    url = f"{server.base_url}/v4/im_open_login_svc/account_check"
    at_limit = httpx.post(url, params=query(app, identifier="a" * MAX_IDENTIFIER_BYTES, sig="x"),
                          content=b"{}").json()
    assert at_limit["ErrorCode"] != 60004  # judged as usual (the UserSig is bad)
    over = httpx.post(url, params=query(app, identifier="a" * (MAX_IDENTIFIER_BYTES + 1),
                                        sig="x"), content=b"{}").json()
    assert over["ErrorCode"] == 60004 and str(MAX_IDENTIFIER_BYTES) in over["ErrorInfo"]


def test_clip_bounds_and_cleans() -> None:
    assert clip(None) is None
    assert clip("plain") == "plain"
    assert clip("a\nb\x1b\udcff") == "a\ufffdb\ufffd\ufffd"
    assert len(clip("z" * 10_000) or "") == RECORDED_CHARS


def test_the_journal_holds_what_it_was_given_bounded() -> None:
    journal = Journal(5)
    for seq in range(10):
        journal.record("POST", "/v4/x/y", None, 1, clip("i" * 60_000), 60004, 1.0, 0, 10,
                       now=float(seq))
    entries = journal.entries()
    assert len(entries) == 5 and all(len(e.Identifier or "") == RECORDED_CHARS for e in entries)
