"""The CLI: `usersig gen`, `usersig explain`, `app create`, and `serve` on an empty database."""

import re
import secrets
import time

import httpx
import pytest
from contract_support import (
    ADMIN,
    SVC,
    App,
    ServerProcess,
    build_sig,
    decode_sig,
    hmac_field,
    run_cli,
    sqlite_url,
    uid,
)

pytestmark = pytest.mark.slow

SIG_RE = re.compile(r"[A-Za-z0-9*\-_]{40,}")
HEX64_RE = re.compile(r"\b[0-9a-fA-F]{64}\b")


def gen(app, identifier, expire=None):
    args = ["usersig", "gen", "--sdkappid", str(app.sdkappid), "--key", app.key, "--identifier", identifier]
    if expire is not None:
        args += ["--expire", str(expire)]
    out = run_cli(*args).stdout
    sigs = SIG_RE.findall(out)
    assert sigs, f"no UserSig in output: {out!r}"
    return max(sigs, key=len)


def test_usersig_gen_decodes_per_spec(dev):
    before = int(time.time())
    sig = gen(dev, "alice", expire=3600)
    after = int(time.time())
    doc = decode_sig(sig)
    assert doc.get("TLS.ver", "2.0") == "2.0"
    assert doc["TLS.identifier"] == "alice"
    assert doc["TLS.sdkappid"] == dev.sdkappid
    assert doc["TLS.expire"] == 3600
    assert before - 1 <= doc["TLS.time"] <= after + 1
    assert doc["TLS.sig"] == hmac_field(dev.key, "alice", dev.sdkappid, doc["TLS.time"], 3600)


def test_usersig_gen_default_expire_is_positive(dev):
    doc = decode_sig(gen(dev, "bob"))
    assert isinstance(doc["TLS.expire"], int) and doc["TLS.expire"] > 0


def test_usersig_gen_accepted_by_server(api, dev):
    sig = gen(dev, ADMIN, expire=600)
    r = api.post("account_check", {"CheckItem": [{"UserID": "x"}]}, dev, usersig=sig)
    assert r.code == 0


def test_usersig_gen_non_ascii_identifier_accepted_by_server(api, dev):
    sig = gen(dev, "管理员", expire=600)
    r = api.post("account_check", {"CheckItem": [{"UserID": "x"}]}, dev, identifier="管理员", usersig=sig)
    assert r.code == 0


def explain(sig, app=None, identifier=None):
    args = ["usersig", "explain", sig]
    if app is not None:
        args += ["--sdkappid", str(app.sdkappid), "--key", app.key, "--identifier", identifier]
    p = run_cli(*args, check=False)
    return p.stdout + p.stderr


def test_usersig_explain_valid_sig_shows_fields(dev):
    sig = build_sig(dev.key, "carol", dev.sdkappid, expire=7200)
    text = explain(sig, dev, "carol")
    assert "carol" in text
    assert str(dev.sdkappid) in text
    assert "Traceback" not in text
    for code in ("70001", "70003", "70009", "70013", "70014"):
        assert code not in text, text


def test_usersig_explain_without_checks_decodes(dev):
    text = explain(build_sig(dev.key, "dave", dev.sdkappid))
    assert "dave" in text and str(dev.sdkappid) in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "make,identifier,code",
    [
        pytest.param(
            lambda a: build_sig(a.key, "erin", a.sdkappid, t=int(time.time()) - 1000, expire=10),
            "erin",
            "70001",
            id="expired",
        ),
        pytest.param(lambda a: build_sig("0" * 64, "erin", a.sdkappid), "erin", "70009", id="wrong_key"),
        pytest.param(lambda a: build_sig(a.key, "erin", a.sdkappid), "frank", "70013", id="identifier_mismatch"),
        pytest.param(lambda a: build_sig(a.key, "erin", 1400999999), "erin", "70014", id="sdkappid_mismatch"),
        pytest.param(lambda a: "not*a*valid*sig", "erin", "70003", id="undecodable"),
        pytest.param(
            lambda a: build_sig(a.key, "erin", a.sdkappid, override={"TLS.ver": "1.0"}), "erin", "70003", id="ver_1.0"
        ),
    ],
)
def test_usersig_explain_invalid_mentions_error_code(dev, make, identifier, code):
    text = explain(make(dev), dev, identifier)
    assert code in text, text
    assert "Traceback" not in text


def test_app_create_prints_key_and_running_server_sees_it(api, server):
    """`app create` without --key generates a 64-hex key; the running server sees the new app;
    the default admin is `administrator` and the default edition allows delete (developer)."""
    sdkappid = 1400000199
    out = run_cli("app", "create", "--db", server.db, "--sdkappid", str(sdkappid), cwd=server.workdir)
    text = out.stdout + out.stderr
    assert str(sdkappid) in text
    keys = HEX64_RE.findall(text)
    assert keys, text
    app = App("created", sdkappid, "developer", [ADMIN], {}, key=keys[0])
    u = uid()
    deadline = time.monotonic() + 5
    while True:
        r = api.import_one(app, u)
        if r.code != 60006 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.code == 0
    r = api.delete(app, [u])
    assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0


def test_serve_on_empty_database_creates_developer_app(tmp_path):
    db = sqlite_url(str(tmp_path / "empty.db"))
    srv = ServerProcess(db, str(tmp_path), "serve")
    try:
        base = srv.base_url
        deadline = time.monotonic() + 30
        text = ""
        sdkappid = key = None
        while time.monotonic() < deadline:
            assert srv.alive(), srv.log()
            text = srv.log()
            keys = HEX64_RE.findall(text)
            m = re.search(r"sdkappid=0*(\d+)", text) or re.search(r"SDKAppID\D{0,20}(\d{3,})", text, re.I)
            if keys and m and "curl" in text:
                key, sdkappid = keys[0], int(m.group(1))
                try:
                    httpx.post(f"{base}/v4/{SVC}/account_check", content=b"{}", timeout=1)
                    break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert key and sdkappid, f"serve did not print SDKAppID, key and a curl command:\n{text}"
        app = App("boot", sdkappid, "developer", [ADMIN], {}, key=key)
        from contract_support import Api

        client = Api(base)
        try:
            u = uid()
            assert client.import_one(app, u).code == 0
            assert client.status(app, ADMIN) == "Imported"
            r = client.delete(app, [u])  # developer edition: delete allowed
            assert r.code == 0 and r["ResultItem"][0]["ResultCode"] == 0
        finally:
            client.close()
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "sdkappid,extra",
    [
        pytest.param(1400000197, ["--key", "not-a-hex-key"], id="key_not_64_hex"),
        pytest.param(1400000196, ["--key", "ab" * 31], id="key_62_hex"),
        pytest.param(1400000195, [x for i in range(11) for x in ("--admin", f"adm{i}")], id="eleven_admins"),
    ],
)
def test_app_create_rejects_invalid_app(api, server, sdkappid, extra):
    """§9.4: an app has a 64-hex-character key and 1 to 10 admins; the CLI refuses others."""
    key = secrets.token_hex(32)
    args = ["app", "create", "--db", server.db, "--sdkappid", str(sdkappid), *extra]
    if "--key" not in extra:
        args += ["--key", key]
    p = run_cli(*args, check=False, cwd=server.workdir)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    # and no such app was stored
    probe = App("probe", sdkappid, "developer", [ADMIN], {}, key=key)
    time.sleep(0.3)
    assert api.check(probe, ["x"]).code == 60006


def test_app_create_ten_admins_ok(api, server):
    sdkappid = 1400000194
    key = secrets.token_hex(32)
    admins = [f"adm{i}" for i in range(10)]
    args = ["app", "create", "--db", server.db, "--sdkappid", str(sdkappid), "--key", key]
    for a in admins:
        args += ["--admin", a]
    run_cli(*args, cwd=server.workdir)
    app = App("ten", sdkappid, "developer", admins, {}, key=key)
    deadline = time.monotonic() + 5
    while True:
        body = {"CheckItem": [{"UserID": "adm9"}]}
        r = api.post("account_check", body, app, identifier="adm9", usersig=app.sig("adm9"))
        if r.code != 60006 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.code == 0
    assert r["ResultItem"][0]["AccountStatus"] == "Imported"
    # `administrator` is not an admin when --admin names others
    r = api.post("account_check", {"CheckItem": [{"UserID": "x"}]}, app, identifier=ADMIN, usersig=app.sig(ADMIN))
    assert r.code == 70403
