"""Load and soak: high concurrency mixing every command and endpoint, for a set time, on each
backend (PostgreSQL with Redis for the shared rate limits).

64 concurrent clients send a weighted mix: the five commands (single and batch imports in both
formats, batch deletes and checks, kicks), calls that must be refused (tampered, expired and
non-admin UserSigs, bad bodies, unknown commands, wrong methods), an app with a low rate limit
(60007), the admin endpoints, /openapi.json, /healthz and /metrics, connections closed after
each call, and clients that vanish in the middle of a body. Every answer must be the one the
contract gives that kind of call (a set of codes per kind, checked on every answer).

The server's resident memory and open file descriptors are read from /proc/PID every second:
from the end of the warm-up (a quarter of the run) to the end of the load, RSS may not grow by
more than 16 MiB and the descriptors by more than 16; once the clients have closed their
connections, the server holds no connection from them (the database pool keeps the connections
it opened under load).

Size: TIMSERVER_SOAK_SECONDS of load per backend.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from reliability_support import (
    SOAK_SECONDS,
    Server,
    admin_query,
    check_response,
    create_apps,
    log_defects,
    record,
    sign,
    v4_query,
)
from support import redis_or_skip

pytestmark = pytest.mark.slow

CLIENTS = 64
POOL = 3000
V4 = "/v4/im_open_login_svc/"


def _actions(app, limited, now: int):
    """(weight, kind, method, url, body, allowed codes, close the connection?) of each call."""
    q, aq = v4_query(app), admin_query(app)
    tampered = sign(app)[:-8] + "AAAAAAAA"
    expired = sign(app, expire=60, now=now - 3600)
    other = sign(app, "soak_user_1")
    return [
        (10, "import", lambda r: ("POST", f"{V4}account_import?{q}",
                                  {"UserID": f"s{r.randrange(POOL)}", "Nick": "n"}), {0}),
        (8, "import_list", lambda r: ("POST", f"{V4}multiaccount_import?{q}", {"AccountList": [
            {"UserID": f"s{r.randrange(POOL)}", "Nick": f"n{i}"} for i in range(r.randint(1, 100))]}),
         {0}),
        (4, "import_accounts", lambda r: ("POST", f"{V4}multiaccount_import?{q}", {"Accounts": [
            f"s{r.randrange(POOL)}" for _ in range(r.randint(1, 100))]}), {0}),
        (8, "delete", lambda r: ("POST", f"{V4}account_delete?{q}", {"DeleteItem": [
            {"UserID": f"s{r.randrange(POOL)}"} for _ in range(r.randint(1, 100))]}), {0}),
        (12, "check", lambda r: ("POST", f"{V4}account_check?{q}", {"CheckItem": [
            {"UserID": f"s{r.randrange(POOL)}"} for _ in range(r.randint(1, 100))]}), {0}),
        (4, "kick", lambda r: ("POST", f"{V4}kick?{q}", {"UserID": f"s{r.randrange(POOL)}"}),
         {0, 70107}),
        (6, "rate_limited", lambda r: ("POST", f"{V4}account_check?{v4_query(limited)}",
                                       {"CheckItem": [{"UserID": "x"}]}), {0, 60007}),
        (2, "tampered", lambda r: ("POST", f"{V4}account_check?{v4_query(app, sig=tampered)}",
                                   {"CheckItem": [{"UserID": "x"}]}), {70009, 70003}),
        (2, "expired", lambda r: ("POST", f"{V4}account_check?{v4_query(app, sig=expired)}",
                                  {"CheckItem": [{"UserID": "x"}]}), {70001}),
        (2, "non_admin", lambda r: ("POST", f"{V4}account_check?"
                                            f"{v4_query(app, 'soak_user_1', other)}",
                                    {"CheckItem": [{"UserID": "x"}]}), {70403}),
        (2, "bad_body", lambda r: ("POST", f"{V4}account_delete?{q}",
                                   r.choice([b"", b"{", b"[]", b'{"DeleteItem": 5}',
                                             b'{"DeleteItem": [{"UserID": 7}]}'])),
         {60003, 70402, 60015}),
        (1, "unknown", lambda r: ("POST", f"/v4/openim/sendmsg?{q}", {}), {60009}),
        (1, "method", lambda r: ("PUT", f"{V4}account_check?{q}", {}), {60008}),
        (2, "list", lambda r: ("GET", f"/_timserver/accounts?{aq}&limit=50&prefix=s1", None), {0}),
        (1, "journal", lambda r: ("GET", f"/_timserver/journal?{aq}&limit=20", None), {0}),
        (1, "faults", lambda r: ("GET", f"/_timserver/faults?{aq}", None), {0}),
        (1, "openapi", lambda r: ("GET", "/openapi.json", None), None),
        (1, "healthz", lambda r: ("GET", "/healthz", None), None),
        (1, "metrics", lambda r: ("GET", "/metrics", None), None),
    ]


async def _vanishing_client(port: int, app) -> None:
    """Sends half a body and goes away."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {V4}account_import?{v4_query(app)} HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 200\r\n\r\n{\"UserID\": ".encode())
    await writer.drain()
    await asyncio.sleep(0.01)
    writer.transport.abort()


def test_soak(backend_db: str, tmp_path: Path) -> None:
    backend = backend_db.split(":")[0]
    args = ["--no-access-log"]
    if backend.startswith("postgres"):
        args += ["--redis", redis_or_skip()]
    app, limited = create_apps(backend_db, [
        {"sdkappid": 1400007004},
        {"sdkappid": 1400007005, "limits": {"account_check": 10}},
    ])
    server = Server(backend_db, tmp_path, *args, log_level="warning")
    try:
        idle_fds = server.open_fds()
        counts: dict[str, dict[int | str, int]] = {}
        violations: list[str] = []
        samples: list[tuple[float, int, int]] = []
        duration = float(SOAK_SECONDS)
        warm = max(3.0, duration / 4)

        async def main() -> None:
            started = time.monotonic()
            end = started + duration
            actions = _actions(app, limited, int(time.time()))
            weights = [a[0] for a in actions]

            async def client_loop(n: int) -> None:
                rng = random.Random(n)
                limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
                async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                             limits=limits) as client:
                    while time.monotonic() < end:
                        _, kind, make, allowed = rng.choices(actions, weights)[0]
                        if kind == "import" and rng.random() < 0.02:
                            await _vanishing_client(server.port, app)
                        method, url, body = make(rng)
                        content = body if isinstance(body, bytes) or body is None \
                            else json.dumps(body).encode()
                        headers = {"Connection": "close"} if rng.random() < 0.1 else {}
                        resp = await client.request(method, url, content=content, headers=headers)
                        per = counts.setdefault(kind, {})
                        try:
                            if allowed is None:
                                assert resp.status_code == 200, resp.status_code
                                code: int | str = "200"
                            else:
                                code = check_response(resp, allowed)["ErrorCode"]
                        except AssertionError as exc:
                            violations.append(f"{kind}: {exc}")
                            code = "violation"
                        per[code] = per.get(code, 0) + 1

            async def sampler() -> None:
                while time.monotonic() < end - 1.5:  # while every client is still busy
                    await asyncio.sleep(1)
                    samples.append((time.monotonic() - started, server.rss_kib(),
                                    server.open_fds()))

            await asyncio.gather(sampler(), *(client_loop(n) for n in range(CLIENTS)))

        asyncio.run(main())
        time.sleep(1.0)
        settled_fds = server.open_fds()
        assert violations == [], violations[:10]
        steady = [s for s in samples if s[0] >= warm]
        assert len(steady) >= 2, "the run is too short to measure"
        rss_growth = steady[-1][1] - steady[0][1]
        fd_growth = steady[-1][2] - steady[0][2]
        total = sum(sum(c.values()) for c in counts.values())
        assert all(counts.get(kind) for kind in ("import", "delete", "check", "kick",
                                                 "rate_limited", "tampered")), counts
        assert counts["rate_limited"].get(60007), "the low limit was reached"
        assert rss_growth <= 16 * 1024, f"RSS grew by {rss_growth} KiB: {steady}"
        assert fd_growth <= 16, f"open descriptors grew by {fd_growth}: {steady}"
        # the clients' connections are all released (the database pool may have grown, and stays)
        assert server.client_connections() == 0
        assert settled_fds <= steady[-1][2] - CLIENTS // 2, (idle_fds, steady[-1][2], settled_fds)
        assert log_defects(server.log()) == []
        assert server.alive()
        record(f"soak[{backend}]", seconds=int(duration), clients=CLIENTS, requests=total,
               rps=round(total / duration), rss_kib_warm=steady[0][1], rss_kib_end=steady[-1][1],
               rss_kib_max=max(s[1] for s in steady), fds_idle=idle_fds, fds_warm=steady[0][2],
               fds_end=steady[-1][2], fds_after=settled_fds,
               codes={k: dict(sorted(v.items(), key=str)) for k, v in sorted(counts.items())})
    finally:
        server.stop()
