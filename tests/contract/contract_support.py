"""Helpers for the black-box contract tests of timserver (imported by conftest.py and the tests).

Everything here is derived from docs/protocol.md (§2 to §9), the contract as served.
The server is driven only through its CLI (``python -m timserver ...``) and over HTTP on 127.0.0.1.

This conftest:
* creates one SQLite database with a set of apps (fixed SDKAppIDs, random keys) via the CLI,
  sets their rate limits, then starts ``python -m timserver serve`` on a free loopback port;
* offers a small HTTP helper (``api``) that builds the §1.1 URL and checks the §1.4/§9 envelope
  invariants on every answer (HTTP 200, Content-Type, ActionStatus/ErrorInfo/ErrorCode);
* offers a hand-made UserSig builder following §3 for the edge cases of §9.6.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import TLSSigAPIv2

from timserver.testing import ServeProcess, free_port  # noqa: F401 (free_port: for the tests)

SVC = "im_open_login_svc"
COMMANDS = ("account_import", "multiaccount_import", "account_delete", "account_check", "kick")
ADMIN = "administrator"

OMIT = object()  # "leave this query parameter / sig field out"


# --------------------------------------------------------------------------------------------
# UserSig helpers (§3)
# --------------------------------------------------------------------------------------------


def b64v_encode(data: bytes) -> str:
    """§3.4 base64 variant: standard base64 then + -> *, / -> -, = -> _."""
    return base64.b64encode(data).decode().replace("+", "*").replace("/", "-").replace("=", "_")


def b64v_decode(s: str) -> bytes:
    return base64.b64decode(s.replace("*", "+").replace("-", "/").replace("_", "="), validate=True)


def decode_sig(sig: str) -> dict:
    return json.loads(zlib.decompress(b64v_decode(sig)).decode("utf-8"))


def hmac_field(key: str, identifier: str, sdkappid: int, t: int, expire: int) -> str:
    """§3.2: TLS.sig = base64_std(HMAC_SHA256(key as UTF-8 bytes, content))."""
    content = f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{t}\nTLS.expire:{expire}\n"
    return base64.b64encode(hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).digest()).decode()


def pack_sig(doc_bytes: bytes, level: int = -1) -> str:
    return b64v_encode(zlib.compress(doc_bytes, level))


def build_sig(
    key: str,
    identifier: str,
    sdkappid: int,
    *,
    t: int | None = None,
    expire: int = 86400,
    ver: Any = "2.0",
    sign_key: str | None = None,
    override: dict | None = None,
    drop: tuple = (),
    order: list | None = None,
    compact: bool = False,
    ensure_ascii: bool = True,
    level: int = -1,
    trailing: str = "",
) -> str:
    """Hand-made UserSig per §3.

    The HMAC is computed over identifier/sdkappid/t/expire with ``sign_key or key``; afterwards
    ``override`` replaces document fields (without re-signing) and ``drop`` removes fields.
    ``ver=OMIT`` leaves out TLS.ver.
    """
    if t is None:
        t = int(time.time())
    sig = hmac_field(sign_key or key, identifier, sdkappid, t, expire)
    doc: dict[str, Any] = {}
    if ver is not OMIT:
        doc["TLS.ver"] = ver
    doc["TLS.identifier"] = identifier
    doc["TLS.sdkappid"] = sdkappid
    doc["TLS.expire"] = expire
    doc["TLS.time"] = t
    doc["TLS.sig"] = sig
    if override:
        doc.update(override)
    for f in drop:
        doc.pop(f, None)
    if order:
        doc = {k: doc[k] for k in order if k in doc}
    text = json.dumps(doc, separators=(",", ":") if compact else None, ensure_ascii=ensure_ascii) + trailing
    return pack_sig(text.encode("utf-8"), level)


def official_sig(sdkappid: int, key: str, identifier: str, expire: int = 86400) -> str:
    """UserSig from the official PyPI package tls-sig-api-v2."""
    return TLSSigAPIv2.TLSSigAPIv2(sdkappid, key).gen_sig(identifier, expire)


def uid(prefix: str = "u") -> str:
    """A fresh, unique, valid UserID (ASCII, < 32 bytes)."""
    return f"{prefix}{uuid.uuid4().hex[:22]}"


def wait_for_second_start(max_frac: float = 0.3) -> None:
    """Sleep until we are early in a wall-clock second (fractional part < max_frac)."""
    frac = time.time() % 1
    if frac >= max_frac:
        time.sleep(1.0 - frac + 0.01)


def sleep_past_second(t: float) -> None:
    """Sleep until int(time.time()) > int(t)."""
    while int(time.time()) <= int(t):
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Apps
# --------------------------------------------------------------------------------------------


@dataclass
class App:
    name: str
    sdkappid: int
    edition: str
    admins: list[str] = field(default_factory=lambda: [ADMIN])
    limits: dict[str, int] = field(default_factory=dict)  # command -> calls/s set through the CLI
    key: str = field(default_factory=lambda: secrets.token_hex(32))

    def sig(self, identifier: str = ADMIN, expire: int = 86400) -> str:
        return official_sig(self.sdkappid, self.key, identifier, expire)


UNLIMITED = {c: 0 for c in COMMANDS}

APPS: dict[str, App] = {
    a.name: a
    for a in [
        App("dev", 1400000101, "developer", [ADMIN, "admin2", "管理员"], dict(UNLIMITED)),
        App("dev2", 1400000102, "developer", [ADMIN], dict(UNLIMITED)),
        App("trial", 1400000103, "trial", [ADMIN], dict(UNLIMITED)),
        App("pro", 1400000104, "pro", [ADMIN], dict(UNLIMITED)),
        # one trial app per cap scenario, each with two admins (admins do not take a place)
        App("trial_cap1", 1400000111, "trial", [ADMIN, "capadmin"]),
        App("trial_cap2", 1400000112, "trial", [ADMIN, "capadmin"]),
        App("trial_cap3", 1400000113, "trial", [ADMIN, "capadmin"]),
        App("trial_cap4", 1400000114, "trial", [ADMIN, "capadmin"]),
        # kick tests kick admins: keep them away from the general apps
        App("kick", 1400000121, "developer", [ADMIN, "k1", "k2", "k3", "k4", "k5", "k6"]),
        # rate-limit apps: low limits, one app per scenario so windows do not interfere
        App("rate_burst", 1400000131, "developer", [ADMIN], {"account_check": 5}),
        App("rate_pace", 1400000132, "developer", [ADMIN], {"account_import": 5}),
        App("rate_slide", 1400000133, "developer", [ADMIN], {"account_check": 5}),
        App("rate_order", 1400000134, "developer", [ADMIN], {"account_check": 5}),
        App("rate_runtime", 1400000135, "developer", [ADMIN], {}),
        App("deflimits", 1400000136, "developer", [ADMIN], {}),  # defaults (account_check 100/s)
    ]
}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 60, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "timserver", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"CLI failed ({proc.returncode}): timserver {' '.join(args)}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def cli_create_app(db: str, app: App, cwd: str | None = None) -> subprocess.CompletedProcess:
    base = ["app", "create", "--db", db, "--sdkappid", str(app.sdkappid), "--key", app.key, "--edition", app.edition]
    # `[--admin NAME ...]`: accept both argparse styles (nargs='+' or action='append').
    first = [*base, "--admin", *app.admins]
    proc = run_cli(*first, check=False, cwd=cwd)
    if proc.returncode != 0 and len(app.admins) > 1:
        second = list(base)
        for a in app.admins:
            second += ["--admin", a]
        proc = run_cli(*second, check=False, cwd=cwd)
    if proc.returncode != 0:
        raise AssertionError(f"app create failed for {app.name}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_set_limit(db: str, sdkappid: int, command: str, rate: int, cwd: str | None = None) -> None:
    run_cli("app", "set-limit", "--db", db, str(sdkappid), command, str(rate), cwd=cwd)


def sqlite_url(path: str) -> str:
    return "sqlite:///" + path  # absolute path -> sqlite:////tmp/...


class ServerProcess(ServeProcess):
    """A running `python -m timserver serve` on 127.0.0.1 (started, and ready, by
    timserver.testing's process starter), run in `workdir` with its log there."""

    def __init__(self, db: str, workdir: str, name: str = "server", *args: str, **options: Any):
        self.workdir = workdir
        super().__init__(db, args, folder=workdir, log_name=f"{name}.log", log_level=None,
                         cwd=workdir, **options)

    def log(self) -> str:
        return self.output()


# --------------------------------------------------------------------------------------------
# HTTP helper
# --------------------------------------------------------------------------------------------


class Reply:
    """One answer of the server; the §1.4/§9 envelope invariants are asserted on creation."""

    def __init__(self, resp: httpx.Response, check: bool = True):
        self.resp = resp
        self.status = resp.status_code
        self.headers = resp.headers
        self.data: Any = None
        if check:
            assert_envelope(resp)
            self.data = resp.json()

    @property
    def code(self) -> int:
        return self.data["ErrorCode"]

    @property
    def info(self) -> str:
        return self.data["ErrorInfo"]

    def __getitem__(self, k):
        return self.data[k]

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.resp.text[:500]!r}>"


def assert_envelope(resp: httpx.Response) -> None:
    """§1.4, §1.5, §9 preamble: HTTP 200, JSON with all three fields, consistent values."""
    assert resp.status_code == 200, f"HTTP status must be 200, got {resp.status_code}: {resp.text[:300]!r}"
    ct = resp.headers.get("content-type")
    assert ct is not None, "response has no Content-Type"
    assert ct.replace(" ", "").lower() == "application/json;charset=utf-8", f"Content-Type is {ct!r}"
    try:
        data = json.loads(resp.content.decode("utf-8"))
    except Exception as e:  # pragma: no cover - reported as failure
        raise AssertionError(f"response body is not UTF-8 JSON: {resp.content[:300]!r}") from e
    assert isinstance(data, dict), f"response is not a JSON object: {data!r}"
    for k in ("ActionStatus", "ErrorInfo", "ErrorCode"):
        assert k in data, f"response lacks {k}: {data!r}"
    assert type(data["ErrorCode"]) is int, f"ErrorCode not an integer: {data!r}"
    assert isinstance(data["ErrorInfo"], str), f"ErrorInfo not a string: {data!r}"
    assert data["ActionStatus"] in ("OK", "FAIL"), f"ActionStatus: {data!r}"
    if data["ErrorCode"] == 0:
        assert data["ActionStatus"] == "OK", data
        assert data["ErrorInfo"] == "", f"ErrorInfo must be empty on success: {data!r}"
    else:
        assert data["ActionStatus"] == "FAIL", data
        assert data["ErrorInfo"].strip() != "", f"ErrorInfo must say what was wrong: {data!r}"


def _encode_body(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class Api:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.client = httpx.Client(timeout=15.0)

    def close(self) -> None:
        self.client.close()

    # -- URL ---------------------------------------------------------------------------------
    def url(
        self,
        command: str,
        app: App | None = None,
        *,
        service: str = SVC,
        sdkappid: Any = None,
        identifier: Any = ADMIN,
        usersig: Any = None,
        random_: Any = None,
        contenttype: Any = "json",
        extra: list[tuple[str, str]] | None = None,
        raw_query: str | None = None,
    ) -> str:
        path = f"{self.base_url}/v4/{service}/{command}"
        if raw_query is not None:
            return f"{path}?{raw_query}" if raw_query else path
        if sdkappid is None:
            sdkappid = app.sdkappid if app else OMIT
        if usersig is None:
            usersig = app.sig(identifier) if (app and identifier is not OMIT) else OMIT
        if random_ is None:
            random_ = random.randint(0, 4294967295)
        params = [
            ("sdkappid", sdkappid),
            ("identifier", identifier),
            ("usersig", usersig),
            ("random", random_),
            ("contenttype", contenttype),
        ]
        params += extra or []
        qs = "&".join(f"{k}={quote(str(v), safe='*-_.~')}" for k, v in params if v is not OMIT)
        return f"{path}?{qs}"

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        command: str,
        body: Any = None,
        app: App | None = None,
        *,
        headers: dict | None = None,
        check: bool = True,
        **url_kw: Any,
    ) -> Reply:
        url = self.url(command, app, **url_kw)
        content = _encode_body(body)
        if headers is None:
            headers = {"Content-Type": "application/json"} if content is not None else {}
        resp = self.client.request(method, url, content=content, headers=headers)
        return Reply(resp, check=check)

    def post(self, command: str, body: Any, app: App | None = None, **kw: Any) -> Reply:
        return self.request("POST", command, body, app, **kw)

    # -- high level ----------------------------------------------------------------------------
    def import_one(self, app: App, user: str, **fields: Any) -> Reply:
        return self.post("account_import", {"UserID": user, **fields}, app)

    def multi_import(self, app: App, users: list, **kw: Any) -> Reply:
        return self.post("multiaccount_import", {"Accounts": users}, app, **kw)

    def check(self, app: App, users: list, **kw: Any) -> Reply:
        return self.post("account_check", {"CheckItem": [{"UserID": u} for u in users]}, app, **kw)

    def statuses(self, app: App, users: list) -> list[str]:
        r = self.check(app, users)
        assert r.code == 0, r
        return [item["AccountStatus"] for item in r["ResultItem"]]

    def status(self, app: App, user: str) -> str:
        return self.statuses(app, [user])[0]

    def delete(self, app: App, users: list, **kw: Any) -> Reply:
        return self.post("account_delete", {"DeleteItem": [{"UserID": u} for u in users]}, app, **kw)

    def kick(self, app: App, user: str, **kw: Any) -> Reply:
        return self.post("kick", {"UserID": user}, app, **kw)
