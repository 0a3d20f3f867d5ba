"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import TLSSigAPIv2
from support import cli, free_port

from timserver import usersig

pytestmark = pytest.mark.slow

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


def test_first_serve_prints_a_curl_that_works(tmp_path) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    port = free_port()
    env = {**os.environ, "TIMSERVER_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    env.pop("TIMSERVER_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "timserver", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Application startup complete" in line:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text
        assert re.search(r"SDKAppID: +14\d{8}", text) and re.search(r"Key: +[0-9a-f]{64}", text)
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=10)
        answer = json.loads(out.stdout)
        assert answer["ActionStatus"] == "OK"
        assert answer["ResultItem"][0]["AccountStatus"] == "Imported"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # The database now lives in the data folder; a second start creates no second app.
    assert (tmp_path / "home" / "timserver.db").exists()
    listed = subprocess.run([sys.executable, "-m", "timserver", "app", "list", "--json"],
                            capture_output=True, text=True, env=env, check=True).stdout
    assert len(listed.strip().splitlines()) == 1


def test_app_lifecycle(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    out = cli("app", "create", "--sdkappid", "1400000300", "--key", KEY, "--admin", "boss",
              "--admin", "ops", "--edition", "trial", db=db).stdout
    assert "1400000300" in out and KEY in out
    shown = json.loads(cli("app", "show", "1400000300", "--json", db=db).stdout)
    assert shown["admins"] == ["boss", "ops"] and shown["edition"] == "trial"
    assert shown["limits"] == {"account_import": 200, "multiaccount_import": 100,
                               "account_delete": 100, "account_check": 100, "kick": 200,
                               "query_online_status": 200, "querystate": 100,
                               "portrait_get": 200, "portrait_set": 200}
    assert (shown["allow_delete"], shown["callback"]) == (False, None)
    assert "curl" in cli("app", "show", "1400000300", db=db).stdout
    cli("app", "set-limit", "1400000300", "account_check", "0", db=db)
    assert json.loads(cli("app", "show", "1400000300", "--json", db=db).stdout)["limits"][
        "account_check"] == 0
    rotated = cli("app", "rotate-key", "1400000300", db=db).stdout
    new_key = re.search(r"Key: +(\S+)", rotated).group(1)
    assert new_key != KEY and re.fullmatch("[0-9a-f]{64}", new_key)
    generated = json.loads(cli("app", "create", "--json", db=db).stdout)
    assert generated["edition"] == "developer" and generated["admins"] == ["administrator"]
    assert re.fullmatch("[0-9a-f]{64}", generated["key"])
    assert len(cli("app", "list", db=db).stdout.strip().splitlines()) == 2


@pytest.mark.parametrize("args,message", [
    (("app", "create", "--sdkappid", "1400000300"), "already exists"),
    (("app", "create", "--admin", "x" * 33), "not a valid UserID"),
    (("app", "create", "--key", "has space"), "key"),
    (("app", "create", *sum((("--admin", f"a{i}") for i in range(11)), ())), "1 to 10"),
    (("app", "show", "999"), "no app"),
    (("app", "set-limit", "1400000300", "account_check", "2000000"), "rate"),
    (("app", "set-limit", "1400000300", "nope", "5"), "nope"),
])
def test_app_errors_are_clear(tmp_path, args, message) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    cli("app", "create", "--sdkappid", "1400000300", db=db)
    result = cli(*args, db=db, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_usersig_gen_verifies_and_matches_official_structure() -> None:
    sig = cli("usersig", "gen", "--sdkappid", "1400000000", "--key", KEY, "--identifier",
              "xiaojun", "--expire", "3600").stdout.strip()
    doc = usersig.verify(sig, sdkappid=1400000000, identifier="xiaojun", key=KEY,
                         now=int(time.time()))
    assert doc.expire == 3600 and abs(doc.time - time.time()) < 5


def test_usersig_explain_valid_and_invalid() -> None:
    sig = TLSSigAPIv2.TLSSigAPIv2(1400000000, KEY).gen_sig("xiaojun", 86400)
    ok = cli("usersig", "explain", sig, "--sdkappid", "1400000000", "--key", KEY,
             "--identifier", "xiaojun")
    assert "Identifier: xiaojun" in ok.stdout and "SDKAppID:   1400000000" in ok.stdout
    assert "Valid:      yes" in ok.stdout and re.search(r"in 2[34] h", ok.stdout)
    wrong_key = cli("usersig", "explain", sig, "--key", "other", check=False)
    assert wrong_key.returncode == 1 and "70009" in wrong_key.stdout
    wrong_id = cli("usersig", "explain", sig, "--identifier", "bob", check=False)
    assert wrong_id.returncode == 1 and "70013" in wrong_id.stdout
    tampered = sig[:40] + ("A" if sig[40] != "A" else "B") + sig[41:]
    bad = cli("usersig", "explain", tampered, check=False)
    assert bad.returncode == 1 and ("70003" in bad.stdout or "70009" in bad.stdout)
    assert "NO:" in bad.stdout
    expired = usersig.generate(1400000000, KEY, "xiaojun", 10, now=int(time.time()) - 100)
    old = cli("usersig", "explain", expired, check=False)
    assert old.returncode == 1 and "70001" in old.stdout and "ago" in old.stdout
