"""HTTPS: a client that verifies certificates against the generated CA completes account_check."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import TLSSigAPIv2
from support import cli, free_port

pytestmark = pytest.mark.slow


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "timserver", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def wait_https(port: int, ca: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context(
                cafile=str(ca)), timeout=1)
            return
        except (httpx.TransportError, OSError):
            time.sleep(0.1)
    raise RuntimeError("the HTTPS server did not start")


def test_self_signed_https_with_a_verifying_client(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "TIMSERVER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("TIMSERVER_DB", None)
    db = f"sqlite:///{home / 'timserver.db'}"
    app = json.loads(cli("app", "create", "--json", "--sdkappid", "1400000500", db=db).stdout)
    port = free_port()
    proc = start(["--port", str(port), "--tls", "self-signed", "--log-level", "warning"], env)
    ca = home / "tls" / "ca.pem"
    try:
        wait_https(port, ca)
        context = ssl.create_default_context(cafile=str(ca))  # verifies chain and host name
        sig = TLSSigAPIv2.TLSSigAPIv2(app["sdkappid"], app["key"]).gen_sig("administrator")
        url = (f"https://127.0.0.1:{port}/v4/im_open_login_svc/account_check?sdkappid="
               f"{app['sdkappid']}&identifier=administrator&usersig={sig}&random=9&contenttype=json")
        r = httpx.post(url, content=b'{"CheckItem":[{"UserID":"administrator"}]}', verify=context)
        assert r.json()["ResultItem"][0]["AccountStatus"] == "Imported"
        r = httpx.get(f"https://localhost:{port}/healthz", verify=context)  # the DNS name too
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):  # an unverified client is refused
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context())
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "REQUESTS_CA_BUNDLE" in out and "keytool -importcert" in out
    assert oct((home / "tls" / "server-key.pem").stat().st_mode & 0o777) == "0o600"
    first = ca.read_bytes()
    # a second start reuses the same CA: clients configured once keep working
    port = free_port()
    proc = start(["--port", str(port), "--tls", "self-signed", "--log-level", "warning"], env)
    try:
        wait_https(port, ca)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert ca.read_bytes() == first


def test_own_certificate_files(tmp_path: Path) -> None:
    from timserver.server.tls import ensure_self_signed

    files = ensure_self_signed(tmp_path / "mine")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    proc = start(["--port", str(port), "--db", db, "--tls-cert", str(files.cert), "--tls-key",
                  str(files.key), "--log-level", "warning"], env)
    try:
        wait_https(port, files.ca_cert)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = cli("serve", "--tls", "self-signed", "--tls-cert", str(files.cert), "--tls-key",
              str(files.key), db=db, check=False)
    assert bad.returncode != 0 and "either" in bad.stderr
