"""Benchmark: bulk import of 100,000 accounts from a CSV file through the SDK and the CLI.

The bound is the server's default limit for multiaccount_import: 100 calls/s × 100 accounts a
call = 10,000 accounts/s. The goal is 97 % of it with the default settings, for the whole
`timserver accounts import` process (start-up included) as for the SDK: the SDK sends each
one-second window's calls together at the window's start (client/_pacing.py), so 100 windows'
worth of calls end about a window early.

    .venv/bin/python bench/import_100k.py                 # fresh local server, SDK then CLI
    .venv/bin/python bench/import_100k.py --via sdk --accounts 20000
    .venv/bin/python bench/import_100k.py --endpoint http://host:8080 --sdkappid N --key K
    .venv/bin/python bench/import_100k.py --via cli --repeat 3 --baseline /tmp/old/src

--repeat N runs each variant N times and prints the medians; --baseline SRC also runs the CLI of
another version of the code (SRC: its ``src`` folder, e.g. ``git archive REV src | tar -x -C
/tmp/old``) against the same server, alternating with this one, so that both see the same load.

Without --endpoint it starts `timserver serve` on a free loopback port with a SQLite database in
a temporary folder, and makes a fresh app (default limits) for each run. Timed: reading the CSV
and importing every account (the SDK run), or the whole `timserver accounts import` process,
interpreter start-up included (the CLI run). Afterwards every account is checked (not timed).
Results are printed as text and, with --json, as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from timserver.client import AsyncClient, read_accounts
from timserver.protocol.commands import MULTIACCOUNT_IMPORT

BOUND = MULTIACCOUNT_IMPORT.default_rate * MULTIACCOUNT_IMPORT.max_items  # accounts/s
GOAL = 0.97


def timserver(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "timserver", *args], capture_output=True,
                          text=True, check=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A local timserver on a free port, its database in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.db = f"sqlite:///{folder / 'bench.db'}"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timserver", "serve", "--port", self.url.rsplit(":", 1)[1],
             "--db", self.db, "--no-access-log", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def new_app(self) -> tuple[int, str, str]:
        made = json.loads(timserver("app", "create", "--json", "--db", self.db).stdout)
        return made["sdkappid"], made["key"], made["admins"][0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("UserID,Nick,FaceUrl\n")
        f.writelines(f"bench_{i:06d},Nick {i},https://example.com/face/{i}.png\n"
                     for i in range(n))


async def verify(app: tuple[int, str, str], endpoint: str, csv_path: Path) -> int:
    """How many accounts of the file the server has (checked through the SDK, not timed)."""
    ids = [a.UserID for a in read_accounts(csv_path)]
    async with AsyncClient(*app, endpoint) as client:
        results = await client.check_accounts(ids)
    return sum(r.status == "Imported" for r in results)


async def via_sdk(app: tuple[int, str, str], endpoint: str, csv_path: Path) -> dict[str, Any]:
    async with AsyncClient(*app, endpoint) as client:
        started = time.perf_counter()
        accounts = read_accounts(csv_path)
        results = await client.import_accounts(accounts)
        seconds = time.perf_counter() - started
    return {"accounts": len(results), "failed": sum(not r.ok for r in results),
            "seconds": seconds, "requests": client.stats.requests,
            "retries": dict(client.stats.retried)}


def via_cli(app: tuple[int, str, str], endpoint: str, csv_path: Path,
            source: str | None = None) -> dict[str, Any]:
    """The whole ``timserver accounts import`` process; ``source``: the ``src`` folder of the
    code to run (default: this one)."""
    sdkappid, key, admin = app
    env = {**os.environ, "TIMSERVER_ENDPOINT": endpoint, "TIMSERVER_SDKAPPID": str(sdkappid),
           "TIMSERVER_KEY": key, "TIMSERVER_ADMIN": admin}
    if source is not None:
        env["PYTHONPATH"] = source
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "timserver", "accounts", "import",
                           str(csv_path), "--no-progress"], env=env, capture_output=True,
                          text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the CLI failed ({done.returncode}):\n{done.stderr}")
    inner = re.search(r"this run ([\d,]+) in ([\d.]+) s", done.stderr)
    n = int(inner.group(1).replace(",", "")) if inner else 0
    return {"accounts": n, "failed": 0, "seconds": seconds,
            "import_seconds": float(inner.group(2)) if inner else None,
            "summary": done.stderr.strip(), "source": source or "this code"}


def verdict(rate: float) -> str:
    return (f"{rate:,.0f} accounts/s = {rate / BOUND:.1%} of the bound {BOUND:,}/s "
            f"({'meets' if rate >= GOAL * BOUND else 'BELOW'} the {GOAL:.0%} goal)")


def report(name: str, run: dict[str, Any], imported: int) -> dict[str, Any]:
    rate = run["accounts"] / run["seconds"]
    run.update(name=name, rate=rate, share_of_bound=rate / BOUND, imported=imported)
    if name == "baseline":
        print(f"baseline ({run['source']}):")
    if name == "sdk":
        print(f"sdk: read the CSV and import {run['accounts']:,} accounts in "
              f"{run['seconds']:.2f} s = {verdict(rate)}")
        print(f"  {run['requests']:,} requests, retries {run['retries'] or 'none'}")
    else:
        inner = run["accounts"] / run["import_seconds"]
        print(f"cli: the import (its own figure, after reading the CSV) "
              f"{run['import_seconds']:.1f} s = {verdict(inner)}")
        print(f"  the whole process (interpreter start-up and reading included): "
              f"{run['seconds']:.2f} s = {verdict(rate)}")
        retries = re.search(r"retries: .*", run["summary"])
        print(f"  {retries.group(0) if retries else 'retries: none'}")
    print(f"  failed {run['failed']}; imported on the server: {imported:,}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--via", choices=["sdk", "cli", "both"], default="both")
    parser.add_argument("--endpoint", help="An existing server (default: start one).")
    parser.add_argument("--sdkappid", type=int)
    parser.add_argument("--key")
    parser.add_argument("--admin", default="administrator")
    parser.add_argument("--json", action="store_true", help="Also print the results as JSON.")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each variant (medians).")
    parser.add_argument("--baseline", metavar="SRC",
                        help="Also run the CLI of the code in SRC (a src folder), alternately.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="timserver-bench-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "accounts.csv"
        write_csv(csv_path, args.accounts)
        server = None if args.endpoint else Server(folder)
        endpoint = args.endpoint or server.url  # type: ignore[union-attr]
        try:
            print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
                  f"{args.accounts:,} accounts; endpoint {endpoint}")
            runs = []
            names = ["sdk", "cli"] if args.via == "both" else [args.via]
            if args.baseline:
                names = ["baseline", *names]
            for _ in range(args.repeat):
                for name in names:
                    app = ((args.sdkappid, args.key, args.admin) if args.endpoint
                           else server.new_app())  # type: ignore[union-attr]
                    run = (asyncio.run(via_sdk(app, endpoint, csv_path)) if name == "sdk"
                           else via_cli(app, endpoint, csv_path,
                                        args.baseline if name == "baseline" else None))
                    runs.append(report(name, run, asyncio.run(verify(app, endpoint, csv_path))))
        finally:
            if server is not None:
                server.stop()
    if args.repeat > 1 or args.baseline:
        medians(runs)
    if args.json:
        print(json.dumps(runs))


def medians(runs: list[dict[str, Any]]) -> None:
    print("medians:")
    for name in dict.fromkeys(r["name"] for r in runs):
        mine = [r for r in runs if r["name"] == name]
        whole = statistics.median(r["seconds"] for r in mine)
        accounts = mine[0]["accounts"]
        each = ", ".join(f"{r['seconds']:.2f}" for r in mine)
        line = (f"  {name}: whole process {whole:.2f} s = {accounts / whole:,.0f} accounts/s = "
                f"{accounts / whole / BOUND:.1%} of the bound ({each})")
        if mine[0].get("import_seconds") is not None:
            inner = statistics.median(r["import_seconds"] for r in mine)
            line += f"; the import alone {inner:.1f} s"
        print(line)


if __name__ == "__main__":
    main()
