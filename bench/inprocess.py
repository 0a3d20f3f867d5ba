"""In-process cost of one call, without HTTP: the ASGI app driven directly, side by side.

    .venv/bin/python bench/inprocess.py [--calls N] [--ids 1,100] [--profile SCENARIO]

Times each scenario (the trivial endpoint, account_check with 1 and 100 UserIDs) in several
rounds of N calls, interleaved, as CPU time of the thread (``time.thread_time``), and prints the
fastest round's µs per call: on a shared machine the fastest round is the one least disturbed.
It shows what the Python of a call costs apart from uvicorn and the kernel (``make bench`` gives
the figures over real HTTP). ``--profile`` runs cProfile over one scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from typing import Any

os.environ["TIMSERVER_BENCH_ENDPOINTS"] = "1"

from timserver import usersig
from timserver.protocol.commands import BY_NAME
from timserver.server.asgi import Settings
from timserver.service import apps as app_rules
from timserver.wiring import make_app

SDKAPPID, KEY, ADMIN = 1400000001, "ab" * 32, "administrator"


async def prepare(app: Any, accounts: int) -> None:
    storage = app.state.storage
    await storage.open()
    await app_rules.create_app(storage, sdkappid=SDKAPPID, key=KEY, admins=(ADMIN,))
    for name in BY_NAME:
        await storage.update_app(SDKAPPID, limit=(name, 0))
    from timserver.storage.base import AccountWrite
    rows = [AccountWrite(f"u{i:08d}", None, None) for i in range(1, accounts + 1)]
    await storage.bulk_load(SDKAPPID, rows)


def scope_for(path: str, query: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "root_path": "", "headers": [(b"host", b"127.0.0.1"),
                                         (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8080)}


def bodies(ids: int, accounts: int, count: int = 512) -> list[bytes]:
    import random
    rnd = random.Random(7)
    out = []
    for c in range(count):
        items = []
        for i in range(ids):
            n = rnd.randint(1, accounts)
            items.append(f'{{"UserID":"{"u" if (c + i) % 2 == 0 else "x"}{n:08d}"}}')
        out.append(('{"CheckItem":[' + ",".join(items) + "]}").encode())
    return out


async def run_calls(app: Any, path: str, query: bytes, payloads: list[bytes], n: int) -> float:
    scope = scope_for(path, query)
    answers: list[Any] = []

    async def send(message: Any) -> None:
        answers.append(message)

    started = time.thread_time()
    for i in range(n):
        payload = payloads[i % len(payloads)]
        delivered = False

        async def receive(payload: bytes = payload) -> Any:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await app(dict(scope), receive, send)
        if len(answers) > 64:
            answers.clear()
    elapsed = time.thread_time() - started
    body = next(m["body"] for m in reversed(answers) if m["type"] == "http.response.body")
    assert b'"ErrorCode":0' in body, body
    return elapsed / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default: a new SQLite file)")
    names = ["ping", "check1", "check100", "check1-prod", "check100-prod"]
    parser.add_argument("--profile", choices=names, default=None)
    parser.add_argument("--only", choices=names, default=None,
                        help="run this scenario only, --calls times, once (for valgrind)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    db = args.db or f"sqlite:///{folder}/bench.db"
    app = make_app(Settings(db=db, access_log=False))
    await prepare(app, args.accounts)
    production = make_app(Settings(db=db, access_log=False, emulator=False))  # --no-emulator
    await production.state.storage.open()
    sig = usersig.generate(SDKAPPID, KEY, ADMIN, 86400, now=int(time.time()))
    query = (f"sdkappid={SDKAPPID}&identifier={ADMIN}&usersig={sig}&random=99&contenttype=json"
             .encode())
    scenarios = {
        "ping": ("/_bench/ping", bodies(1, args.accounts)),
        "check1": ("/v4/im_open_login_svc/account_check", bodies(1, args.accounts)),
        "check100": ("/v4/im_open_login_svc/account_check", bodies(100, args.accounts, 64)),
    }
    served = {name: app for name in scenarios}
    for name in ("check1", "check100"):  # the same calls, on a server without the emulator
        scenarios[f"{name}-prod"] = scenarios[name]
        served[f"{name}-prod"] = production
    if args.profile:
        path, payloads = scenarios[args.profile]
        await run_calls(served[args.profile], path, query, payloads, 500)
        profiler = cProfile.Profile()
        profiler.enable()
        await run_calls(served[args.profile], path, query, payloads, args.calls)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
        return
    if args.only:
        path, payloads = scenarios[args.only]
        await run_calls(served[args.only], path, query, payloads, args.calls)
        return
    results: dict[str, list[float]] = {name: [] for name in scenarios}
    for name, (path, payloads) in scenarios.items():  # warm up
        await run_calls(served[name], path, query, payloads, 500)
    for _ in range(args.rounds):
        for name, (path, payloads) in scenarios.items():
            calls = args.calls if not name.startswith("check100") else max(args.calls // 10, 100)
            results[name].append(await run_calls(served[name], path, query, payloads, calls))
    for name, values in results.items():
        print(f"{name:10s} {min(values):8.1f} µs/call (median of rounds "
              f"{statistics.median(values):.1f})")
    await app.state.storage.close()
    await production.state.storage.close()


if __name__ == "__main__":
    asyncio.run(main())
