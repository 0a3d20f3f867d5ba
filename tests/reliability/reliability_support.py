"""Helpers of the reliability suite: size knobs, a server process with its log in a file,
apps made in-process, the envelope check, /proc measurements and the figures table.

Every server runs on 127.0.0.1; every loop in this suite is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from timserver import usersig
from timserver.protocol.errors import CATALOGUE
from timserver.service import apps as app_rules
from timserver.storage import App, make_storage
from timserver.testing import ServeProcess

COMMANDS = ("account_import", "multiaccount_import", "account_delete", "account_check", "kick")
ADMIN = "administrator"


def knob(name: str, default: int) -> int:
    """A size knob from the environment: ``make test`` runs the default slice, ``make fuzz`` /
    ``make torture`` / ``make soak`` set the full size."""
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


FUZZ_EXAMPLES = knob("TIMSERVER_FUZZ_EXAMPLES", 1500)
TORTURE_ROUNDS = knob("TIMSERVER_TORTURE_ROUNDS", 2)
SOAK_SECONDS = knob("TIMSERVER_SOAK_SECONDS", 15)


# --- figures ------------------------------------------------------------------------------------

FIGURES: list[dict[str, Any]] = []


def record(test: str, **figures: Any) -> None:
    """Keep a test's figures for the summary (and ``$TIMSERVER_RELIABILITY_FIGURES``, a file)."""
    entry = {"test": test, **figures}
    FIGURES.append(entry)
    path = os.environ.get("TIMSERVER_RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


# --- apps, made in-process (fast: no CLI round trip per setting) -------------------------------

def create_apps(db: str, specs: list[dict[str, Any]]) -> list[App]:
    """Create apps (``sdkappid``, ``admins``, ``edition``, ``limits``: command → rate, default
    unlimited) in the database, before any server starts."""
    return asyncio.run(create_apps_async(db, specs))


async def create_apps_async(db: str, specs: list[dict[str, Any]]) -> list[App]:
    storage = make_storage(db)
    await storage.open()
    try:
        made = []
        for spec in specs:
            app = await app_rules.create_app(
                storage, sdkappid=spec["sdkappid"], admins=tuple(spec.get("admins", (ADMIN,))),
                edition=spec.get("edition", "developer"))
            limits = {name: 0 for name in COMMANDS} | spec.get("limits", {})
            for name, rate in limits.items():
                app = await storage.update_app(app.sdkappid, limit=(name, rate))
            made.append(app)
        return made
    finally:
        await storage.close()


def sign(app: App, identifier: str | None = None, expire: int = 86400, now: int | None = None) -> str:
    return usersig.generate(app.sdkappid, app.key, identifier or app.admins[0], expire,
                            now=int(time.time()) if now is None else now)


def v4_query(app: App, identifier: str | None = None, sig: str | None = None) -> str:
    identifier = identifier or app.admins[0]
    sig = sign(app, identifier) if sig is None else sig
    return (f"sdkappid={app.sdkappid}&identifier={_quote(identifier)}&usersig={sig}"
            "&random=4242&contenttype=json")


def admin_query(app: App, identifier: str | None = None, sig: str | None = None) -> str:
    identifier = identifier or app.admins[0]
    sig = sign(app, identifier) if sig is None else sig
    return f"sdkappid={app.sdkappid}&identifier={_quote(identifier)}&usersig={sig}"


def _quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")


# --- the envelope -------------------------------------------------------------------------------

class ContractViolation(AssertionError):
    pass


def check_envelope(status: int, content_type: str, body: bytes,
                   allowed: set[int] | None = None) -> dict[str, Any]:
    """The answer is HTTP 200 with Tencent's envelope: three fields, a catalogue code, OK ⇔ 0,
    and (when given) a code from ``allowed``. Returns the decoded body."""
    if status != 200:
        raise ContractViolation(f"HTTP {status}: {body[:300]!r}")
    if not content_type.startswith("application/json"):
        raise ContractViolation(f"Content-Type {content_type!r}: {body[:300]!r}")
    try:
        data = json.loads(body)
    except ValueError:
        raise ContractViolation(f"not JSON: {body[:300]!r}") from None
    if not isinstance(data, dict):
        raise ContractViolation(f"not an object: {body[:300]!r}")
    status_text, code, info = data.get("ActionStatus"), data.get("ErrorCode"), data.get("ErrorInfo")
    if status_text not in ("OK", "FAIL") or type(code) is not int or type(info) is not str:
        raise ContractViolation(f"not an envelope: {body[:300]!r}")
    if (status_text == "OK") != (code == 0):
        raise ContractViolation(f"ActionStatus and ErrorCode disagree: {body[:300]!r}")
    if code != 0 and (code not in CATALOGUE or not info):
        raise ContractViolation(f"ErrorCode {code} is not in the catalogue or has no ErrorInfo")
    if code == 70500:  # an internal error: a defect here, where the database is healthy
        raise ContractViolation(f"70500 internal error: {body[:300]!r}")
    if allowed is not None and code not in allowed:
        raise ContractViolation(f"ErrorCode {code} not expected here (allowed {sorted(allowed)}): "
                                f"{body[:300]!r}")
    return data


def check_response(resp: httpx.Response, allowed: set[int] | None = None) -> dict[str, Any]:
    return check_envelope(resp.status_code, resp.headers.get("content-type", ""), resp.content,
                          allowed)


# --- the log ------------------------------------------------------------------------------------

LOG_DEFECTS = ("Traceback", "Exception in ASGI application", "internal error",
               "Internal Server Error", "ERROR")


def log_defects(text: str) -> list[str]:
    """Lines of a server log that show a defect: a traceback, an exception that escaped."""
    return [line for line in text.splitlines() if any(mark in line for mark in LOG_DEFECTS)]


# --- a server process ---------------------------------------------------------------------------

class Server(ServeProcess):
    """``timserver serve`` on a free loopback port (``timserver.testing``'s process starter),
    its output (access log included) in a file in ``folder``; ``kill()`` is SIGKILL by PID,
    ``start()`` starts it again on a new port."""

    def __init__(self, db: str, folder: Path, *args: str, log_level: str = "info",
                 env: dict[str, str] | None = None) -> None:
        super().__init__(db, args, folder=folder, log_level=log_level, access_log=True, env=env,
                         stop_timeout=15)

    def log(self) -> str:
        """Everything this server wrote, across its restarts."""
        return self.output()

    # --- /proc measurements ---------------------------------------------------------------------
    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def client_connections(self) -> int:
        """Established TCP connections to the server's port (its clients), from /proc/net/tcp."""
        port = f"{self.port:04X}"
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table, encoding="ascii") as lines:
                    next(lines)
                    for line in lines:
                        fields = line.split()
                        if fields[1].endswith(":" + port) and fields[3] == "01":
                            count += 1
            except OSError:
                pass
        return count


def assert_alive_and_serving(server: Server, app: App) -> None:
    """The server still answers a real call correctly (the end of every fuzzer)."""
    assert server.alive(), "the server process died"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        resp = client.post(f"/v4/im_open_login_svc/account_check?{v4_query(app)}",
                           content=json.dumps({"CheckItem": [{"UserID": app.admins[0]}]}))
        data = check_response(resp, {0})
        assert data["ResultItem"][0]["AccountStatus"] == "Imported"
