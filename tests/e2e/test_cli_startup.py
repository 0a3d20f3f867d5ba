"""``timserver serve`` and the CLI at start-up, run as a user runs them (issue 15, items 1-4, 8,
11): options and files checked before anything changes, the port taken before anything is
printed, one line for each mistake, and every printed URL the one actually served."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from support import LiveServer, cli, free_port

from timserver.testing import stop_process

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


class Started:
    """``timserver serve ARGS`` in a child process; stdout and stderr each in a file."""

    def __init__(self, *args: str, home: Path) -> None:
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        env = {**os.environ, "TIMSERVER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        env.pop("TIMSERVER_DB", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "timserver", "serve", *args],
                                     stdout=self.out, stderr=self.err, env=env)

    def text(self, which: str = "out") -> str:
        f = self.out if which == "out" else self.err
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def wait(self, needle: str = "Application startup complete", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text("out") + self.text("err"):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.text()}{self.text('err')}")
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r}: {self.text()}{self.text('err')}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)


def run_serve(*args: str, home: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A ``serve`` expected to stop at once (a bad option or file, a busy port)."""
    env = {**os.environ, "TIMSERVER_HOME": str(home)}
    env.pop("TIMSERVER_DB", None)
    return subprocess.run([sys.executable, "-m", "timserver", "serve", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def urls(text: str) -> list[str]:
    return re.findall(r"\b[a-z]+://[^\s'\"`]+", text)


# --- 1. a port in use -------------------------------------------------------------------------


def test_a_port_in_use_is_one_line_naming_it_and_nothing_is_printed_or_made(tmp_path) -> None:
    running = LiveServer(f"sqlite:///{tmp_path / 'first.db'}")
    try:
        second = tmp_path / "second.db"
        done = run_serve("--port", str(running.port), "--db", f"sqlite:///{second}",
                         home=tmp_path)
        line = one_line_error(done)
        assert f"127.0.0.1:{running.port}" in line and "already in use" in line
        assert "--port" in line  # what to do
        assert done.stdout == ""  # no "listening", no app, no console link with a dead token
        assert not second.exists()  # nothing made
        # The running server is untouched.
        assert httpx.get(f"{running.base_url}/healthz", timeout=5).status_code == 200
    finally:
        running.stop()


def test_port_zero_prints_the_port_actually_taken(tmp_path) -> None:
    server = Started("--port", "0", "--db", f"sqlite:///{tmp_path / 'a.db'}", home=tmp_path)
    try:
        server.wait()
        printed = urls(server.text())
        assert printed and all(":0/" not in u and not u.endswith(":0") for u in printed)
        base = re.search(r"listening on (\S+)", server.text()).group(1)
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


# --- 2. an unusable --db ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("app", "list"),
                                     ("app", "create"), ("faults", "list", "--sdkappid", "1"),
                                     ("reset", "--sdkappid", "1"), ("clock", "show"),
                                     ("migrate",)])
@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_an_unusable_db_is_one_line_naming_the_path_and_the_reason(tmp_path, command,
                                                                   where) -> None:
    if where == "proc":
        db, folder, reason = "sqlite:////proc/nope/x.db", "/proc/nope", "no such file"
    else:
        (tmp_path / "afile").write_text("x")
        db, folder = f"sqlite:///{tmp_path / 'afile' / 'x.db'}", str(tmp_path / "afile")
        reason = "a file is in the way"
    env = {**os.environ, "TIMSERVER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "timserver", *command, "--db", db], env=env,
                          capture_output=True, text=True, timeout=60)
    line = one_line_error(done)
    assert folder in line and reason in line.lower() and "--db" in line


# --- 3. --tls self-signed: https everywhere ---------------------------------------------------


def test_tls_self_signed_prints_https_urls_that_answer(tmp_path) -> None:
    port = free_port()
    server = Started("--port", str(port), "--tls", "self-signed", "--db",
                     f"sqlite:///{tmp_path / 'a.db'}", home=tmp_path)
    try:
        server.wait()
        out = server.text()
        ca = tmp_path / "tls" / "ca.pem"
        printed = [u for u in urls(out) if "127.0.0.1" in u]
        assert printed and all(u.startswith(f"https://127.0.0.1:{port}") for u in printed), out
        console = next(u for u in printed if "/console/" in u)
        trusted = ssl.create_default_context(cafile=str(ca))
        assert httpx.get(console, verify=trusted, timeout=5).status_code == 200
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl -s"))
        answer = json.loads(subprocess.run(["bash", "-c", curl], capture_output=True, text=True,
                                           timeout=20).stdout)
        assert answer["ActionStatus"] == "OK", answer
    finally:
        server.stop()


# --- 4. a custom port: the curl commands printed point at it ----------------------------------


def test_a_second_start_on_a_custom_port_points_app_show_at_it(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", "1400000400", "--key", KEY, db=db)
    port = free_port()
    server = Started("--port", str(port), "--db", db, home=tmp_path)
    try:
        server.wait()
        shown = re.search(r"`(timserver app show [^`]+)`", server.text()).group(1)
        assert f"--url http://127.0.0.1:{port}" in shown
        args = shown.split()[1:]
        out = cli(*args, db=db).stdout
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl -s"))
        assert f"http://127.0.0.1:{port}/v4/" in curl
        answer = json.loads(subprocess.run(["bash", "-c", curl], capture_output=True, text=True,
                                           timeout=20).stdout)
        assert answer["ActionStatus"] == "OK", answer
    finally:
        server.stop()
    guessed = cli("app", "show", "1400000400", db=db).stdout
    assert "guessing" in guessed and "--url" in guessed


# --- 8. --faults / --seed checked before anything changes -------------------------------------


def test_a_bad_faults_file_on_an_empty_database_makes_no_app(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"Command": "account_check", "ErrorCode": "x"}]')
    db = tmp_path / "a.db"
    done = run_serve("--port", str(free_port()), "--db", f"sqlite:///{db}", "--faults", str(bad),
                     home=tmp_path)
    line = one_line_error(done)
    assert "bad.json" in line and "listening" not in done.stdout and "Created" not in done.stdout
    assert cli("app", "list", "--json", db=f"sqlite:///{db}").stdout == ""


def test_a_bad_faults_file_seeds_nothing(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", "1400000401", "--key", KEY, db=db)
    seed = tmp_path / "users.csv"
    seed.write_text("UserID\nalice\nbob\n")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"SDKAppID": 1400000401, "Command": "nope", "ErrorCode": 70169}]')
    done = run_serve("--port", str(free_port()), "--db", db, "--seed", str(seed), "--faults",
                     str(bad), "--clock-offset", "60", home=tmp_path)
    one_line_error(done)
    assert "Seeded" not in done.stdout and "listening" not in done.stdout
    assert json.loads(cli("app", "show", "1400000401", "--json", db=db).stdout)["accounts"] == 1  # the admin
    assert "+0 s" in cli("clock", "show", db=db).stdout  # the offset was not set either


def test_a_bad_seed_file_loads_no_faults(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", "1400000402", "--key", KEY, db=db)
    seed = tmp_path / "users.ndjson"
    seed.write_text('{"UserID": "alice"}\n{"UserID": \n')
    faults = tmp_path / "rules.json"
    faults.write_text('[{"SDKAppID": 1400000402, "Command": "account_check", "ErrorCode": 70169}]')
    done = run_serve("--port", str(free_port()), "--db", db, "--seed", str(seed), "--faults",
                     str(faults), home=tmp_path)
    line = one_line_error(done)
    assert "users.ndjson" in line and "listening" not in done.stdout
    assert "70169" not in cli("faults", "list", "--sdkappid", "1400000402", db=db).stdout


# --- 11. --log-format json: every log line is JSON --------------------------------------------


def test_log_format_json_makes_uvicorns_lines_json_too(tmp_path) -> None:
    server = Started("--port", str(free_port()), "--log-format", "json", "--db",
                     f"sqlite:///{tmp_path / 'a.db'}", home=tmp_path)
    try:
        server.wait()
    finally:
        server.stop()
    lines = [line for line in server.text("err").splitlines() if line.strip()]
    assert any("startup complete" in line for line in lines)
    for line in lines:
        entry = json.loads(line)  # every line of the log, uvicorn's included
        assert {"ts", "level", "logger", "msg"} <= entry.keys()
