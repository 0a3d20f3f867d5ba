"""``timserver.testing`` as a user meets it: a pytest plugin in another project, and
``start_server`` on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from timserver.testing import start_server

pytestmark = pytest.mark.slow

CONFTEST = 'pytest_plugins = ["timserver.testing"]\n'
TESTS = textwrap.dedent('''
    import httpx

    def test_a_dirties_the_server(tim_server):
        assert tim_server.call("account_import", {"UserID": "alice"})["ErrorCode"] == 0
        tim_server.add_fault(command="kick", code=70500)
        tim_server.set_clock(600)
        assert len(tim_server.faults()) == 1

    def test_b_finds_it_clean(tim_server):
        answer = tim_server.call("account_check", {"CheckItem": [{"UserID": "alice"}]})
        assert answer["ResultItem"][0]["AccountStatus"] == "NotImported"
        assert tim_server.faults() == []
        assert tim_server.control("GET", "/_timserver/clock")["Offset"] == 0

    def test_c_same_process_for_the_session(tim_server, tim_server_session):
        assert tim_server is tim_server_session
        assert httpx.get(tim_server.base_url + "/healthz").status_code == 200
''')


def test_the_plugin_in_a_project_of_its_own(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_with_timserver.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--rootdir", str(project), str(project)],
        capture_output=True, text=True, timeout=180, cwd=project, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_start_server_and_stop() -> None:
    server = start_server(sdkappid=1400000777, edition="trial", admin="boss", unlimited=True)
    folder, process = server.folder, server.process
    assert process is not None
    try:
        assert server.sdkappid == 1400000777 and server.admin == "boss"
        assert server.call("account_import", {"UserID": "amy"})["ErrorCode"] == 0
        shown = server.cli("app", "show", "1400000777", "--json").stdout
        assert '"edition": "trial"' in shown and '"account_check": 0' in shown
    finally:
        server.stop()
    assert process.poll() is not None  # the process is gone
    assert not folder.exists()  # and its temporary folder too
    try:
        httpx.get(f"{server.base_url}/healthz", timeout=1)
        raise AssertionError("the server still answers")
    except httpx.TransportError:
        pass
