"""The container image, built and run for real (README "Run it in a container").

``scripts/docker-local.sh`` installs Debian's docker.io and debootstrap when missing, starts a
Docker daemon of its own, makes a local ``debian:bookworm-slim`` with debootstrap (Docker Hub is
not reachable here) and builds the image; this test then runs it as README says and drives it over
HTTP: the banner's curl, an import and a check, the health check, a restart that keeps the
accounts in the volume, and the state written by ``--export-on-exit`` on ``docker stop``. It
needs root (apt-get, dockerd); without root, or where no daemon can start, it skips
saying why. The first run takes a few minutes (debootstrap, apt and pip inside the build); later
ones reuse ~/.cache/timserver-docker and take well under a minute.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import free_port, query

from timserver.service import apps as app_rules
from timserver.storage import App

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "docker-local.sh"
IMAGE = "timserver:local"
DEV_APP = App(sdkappid=app_rules.DEV_SDKAPPID, key=app_rules.DEV_KEY, edition="developer",
              admins=("administrator",))
DECLARED = App(sdkappid=1400000555, key="d" * 64, edition="developer", admins=("ops",))


def _script(step: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), step], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _exclusive(timeout: float) -> Iterator[None]:
    """One container test at a time on this machine: they share the daemon and its cache."""
    cache = Path(os.environ.get("TIMSERVER_DOCKER_CACHE", Path.home() / ".cache/timserver-docker"))
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "test.lock", "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another container test held {cache / 'test.lock'} for "
                                f"{timeout:.0f} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def docker_env() -> Iterator[dict[str, str]]:
    """The environment that points ``docker`` at our daemon, with the image built."""
    if os.geteuid() != 0:
        pytest.skip("the container test needs root (apt-get install docker.io debootstrap, dockerd)")
    with _exclusive(timeout=1200):
        installed = _script("install", 960)
        if installed.returncode != 0:
            pytest.skip(f"cannot install docker.io and debootstrap: {_tail(installed.stderr)}")
        started = _script("start", 90)
        if started.returncode != 0:
            pytest.skip(f"no Docker daemon can start here: {_tail(started.stderr)}")
        ours = "daemon started" in started.stderr  # else one that already ran: left running
        env = dict(os.environ)
        env.update(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        try:
            for step, limit in (("base", 1300), ("build", 960)):
                done = _script(step, limit)
                assert done.returncode == 0, f"docker-local.sh {step}:\n{_tail(done.stderr, 30)}"
            yield env
        finally:
            if ours:
                _script("stop", 60)


def readme_run_command() -> list[str]:
    """README's ``docker run`` line of the scripts/docker-local.sh recipe, as arguments."""
    readme = (ROOT / "README.md").read_text()
    recipe = readme[readme.index("scripts/docker-local.sh all"):]
    line = next(line for line in recipe.splitlines() if line.startswith("docker run "))
    return shlex.split(line.split("#")[0])[2:]  # after "docker run"


def as_run_here(readme_args: list[str], name: str, port: int, volume: str) -> list[str]:
    """README's arguments with this test's name, volume, and a free port of the host's loopback
    (README publishes 8080, which may be taken on a shared machine)."""
    swap = {"timserver": name, "8080:8080": f"127.0.0.1:{port}:8080",
            "timserver-data:/data": f"{volume}:/data"}
    return [swap.get(arg, arg) for arg in readme_args]


def docker(env: dict[str, str], *args: str, timeout: float = 60,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done


def wait_healthz(base_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{base_url}/healthz did not answer within {timeout:.0f} s")


def wait_logged(env: dict[str, str], name: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        done = docker(env, "logs", name, check=False)
        logs = done.stdout + done.stderr
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.2)


def call(base_url: str, app: App, command: str, body: object) -> dict[str, object]:
    resp = httpx.post(f"{base_url}/v4/im_open_login_svc/{command}", params=query(app),
                      json=body, timeout=10)
    assert resp.status_code == 200
    return resp.json()


def statuses(base_url: str, app: App, *user_ids: str) -> list[str]:
    answer = call(base_url, app, "account_check",
                  {"CheckItem": [{"UserID": u} for u in user_ids]})
    assert answer["ActionStatus"] == "OK", answer
    return [item["AccountStatus"] for item in answer["ResultItem"]]


def test_image_serves_keeps_accounts_in_its_volume_and_reports_health(
        docker_env: dict[str, str]) -> None:
    run_id = uuid.uuid4().hex[:8]
    first, second = f"timserver-test-{run_id}-1", f"timserver-test-{run_id}-2"
    volume = f"timserver-test-{run_id}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        readme_args = readme_run_command()
        assert readme_args == ["-d", "--name", "timserver", "-p", "8080:8080", "-v",
                               "timserver-data:/data", IMAGE]
        docker(docker_env, "run", *as_run_here(readme_args, first, port, volume))
        wait_healthz(base_url)
        logs = wait_logged(docker_env, first, "Application startup complete")
        assert f"SDKAppID: {app_rules.DEV_SDKAPPID}" in logs
        assert f"Key:      {app_rules.DEV_KEY}" in logs
        # The pasted curl: the banner speaks of the container's port 8080, which is the host's
        # with README's -p 8080:8080; this test publishes it on a free port instead.
        curl = next(line.strip() for line in logs.splitlines() if line.strip().startswith("curl "))
        assert "'http://127.0.0.1:8080/v4/im_open_login_svc/account_check?" in curl
        pasted = curl.replace("http://127.0.0.1:8080/", f"{base_url}/")
        if shutil.which("curl"):
            out = subprocess.run(["bash", "-c", pasted], capture_output=True, text=True,
                                 timeout=30).stdout
        else:  # the same request, sent by httpx
            url, body = re.search(r"curl -s -X POST '(\S+)' -d '(.+)'$", pasted).groups()
            out = httpx.post(url, content=body, timeout=10).text
        answer = json.loads(out)
        assert answer["ActionStatus"] == "OK"
        assert [i["AccountStatus"] for i in answer["ResultItem"]] == ["Imported", "NotImported"]

        # An import and a check.
        imported = call(base_url, DEV_APP, "multiaccount_import",
                        {"Accounts": ["alice", "bob"]})
        assert imported["ActionStatus"] == "OK", imported
        assert statuses(base_url, DEV_APP, "alice", "bob", "carol") == [
            "Imported", "Imported", "NotImported"]

        # Safe by default: the web console answers on the container's loopback only.
        page = httpx.get(f"{base_url}/console/", timeout=10)
        assert "<html" not in page.text.lower() and page.json()["ErrorCode"] == 60009

        # Docker's own view: the HEALTHCHECK on /healthz passes (first probe after 10 s).
        deadline = time.monotonic() + 40
        health = ""
        while time.monotonic() < deadline and health != "healthy":
            health = docker(docker_env, "inspect", "--format", "{{.State.Health.Status}}",
                            first).stdout.strip()
            time.sleep(1)
        assert health == "healthy"
        user = docker(docker_env, "exec", first, "id", "-u").stdout.strip()
        assert user != "0"

        # Stopped (SIGTERM) and started again as a new container on the same volume, with an app
        # declared through TIMSERVER_APPS: the accounts are still there.
        docker(docker_env, "stop", "--time", "15", first, timeout=40)
        docker(docker_env, "run", "-d", "--name", second, "-p", f"127.0.0.1:{port}:8080",
               "-v", f"{volume}:/data",
               "-e", f"TIMSERVER_APPS={DECLARED.sdkappid}:{DECLARED.key}:ops", IMAGE,
               "serve", "--host", "0.0.0.0", "--port", "8080",
               "--export-on-exit", "/data/state.jsonl")
        wait_healthz(base_url)
        assert statuses(base_url, DEV_APP, "alice", "bob", "carol") == [
            "Imported", "Imported", "NotImported"]
        assert statuses(base_url, DECLARED, "ops") == ["Imported"]
        logs = wait_logged(docker_env, second, "Application startup complete")
        assert "Well-known development app (developer edition, unchanged" in logs
        assert f"Declared app {DECLARED.sdkappid} (developer, admins ops): created." in logs
        assert DECLARED.key not in logs

        # docker stop: the server (PID 1) answers its last call, then writes the state file.
        docker(docker_env, "stop", "--time", "15", second, timeout=40)
        state = docker(docker_env, "run", "--rm", "-v", f"{volume}:/data", "--entrypoint",
                       "sh", IMAGE, "-c", "stat -c %a /data/state.jsonl; cat /data/state.jsonl")
        mode, *lines = state.stdout.splitlines()
        assert mode == "600"
        records = [json.loads(line) for line in lines]
        assert {(r["sdkappid"], r["user_id"]) for r in records if r["type"] == "account"} >= {
            (DEV_APP.sdkappid, "alice"), (DEV_APP.sdkappid, "bob"), (DECLARED.sdkappid, "ops")}
        assert records[-1] == {"type": "end", "records": len(records) - 2}
    finally:
        docker(docker_env, "rm", "-f", first, second, check=False)
        docker(docker_env, "volume", "rm", "-f", volume, check=False)
