"""The request pipeline against the bare-ASGI ceiling, every figure from one run.

    make bench-pipeline                       # SQLite and PostgreSQL, 10k accounts, 3 reps
    .venv/bin/python bench/pipeline.py --backends sqlite --reps 5 --duration 5

Servers, all on loopback, one worker each, started once and driven in turn by ``wrk`` in every
repetition (so each ratio compares figures measured minutes apart at most):

* ``bare``: ``bench/bare_asgi.py``, a plain ASGI callable on uvicorn answering a fixed JSON;
* ``emulator``: ``timserver serve`` as it starts by default (journal and metrics on, no rule);
* ``production``: ``timserver serve --no-emulator``;

and, on the production server, ``account_check`` of an app with Tencent's default limit
(100 calls/s), where nearly every call is refused with 60007: what a refusal costs.

Reported: medians of req/s and server CPU µs per request, and each scenario's share of the
bare ceiling's req/s. The accounts are loaded as ``bench/run.py`` loads them (cached).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (bench/run.py: loading, servers, wrk)

LIMITED_APP = 1400000003  # Tencent's default rate limits


class BareServer(run.Server):
    """``bench/bare_asgi.py`` in its own process, with ``run.Server``'s interface."""

    def __init__(self, log: Path) -> None:
        self.port = run.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "bare_asgi.py"), str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready(log, 30)


async def _limited_app(url: str) -> None:
    from timserver.service import apps as app_rules
    from timserver.storage import make_storage

    storage = make_storage(url)
    await storage.open()
    try:
        if await storage.get_app(LIMITED_APP) is None:
            await app_rules.create_app(storage, sdkappid=LIMITED_APP, key=run.KEY,
                                       admins=(run.ADMIN,))
    finally:
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--size", default="10k", choices=list(run.SIZES))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "timserver-bench")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    wrk = run.ensure_wrk()
    size = run.SIZES[args.size]
    by_name = {s.name: s for s in run.SCENARIOS}
    ping, check_1, check_100 = by_name["trivial"], by_name["check_1"], by_name["check_100"]
    rows: list[tuple[str, str, list[run.Sample]]] = []
    for backend in args.backends.split(","):
        url, _ = run.ensure_loaded(backend, args.size, args.data, args.pg)
        asyncio.run(_limited_app(url))
        servers = {
            "bare": BareServer(args.data / "bare.log"),
            "emulator": run.Server(url, args.data / f"pipe-{backend}-emu.log",
                                   ["--no-access-log"]),
            "production": run.Server(url, args.data / f"pipe-{backend}-prod.log",
                                     ["--no-access-log", "--no-emulator"]),
        }
        plan = [("bare", "bare ASGI ceiling", ping, run.READ_APP)]
        for mode in ("emulator", "production"):
            plan += [(mode, f"{mode}: account_check, 1 UserID", check_1, run.READ_APP),
                     (mode, f"{mode}: account_check, 100 UserIDs", check_100, run.READ_APP)]
        plan.append(("production", "production: account_check refused (60007)", check_1,
                     LIMITED_APP))
        samples: dict[str, list[run.Sample]] = {label: [] for _, label, _, _ in plan}
        try:
            for name, _label, scenario, app in plan:  # warm up caches and pools
                run.run_wrk(wrk, servers[name], scenario, size, 1, args.connections,
                            args.threads, "w", app, None)
            for rep in range(args.reps):
                for name, label, scenario, app in plan:
                    sample = run.run_wrk(wrk, servers[name], scenario, size, args.duration,
                                         args.connections, args.threads, f"{rep}", app, None)
                    samples[label].append(sample)
                    run.say(f"  {backend} rep {rep + 1}: {label:45} {sample.rps:9,.0f} req/s "
                            f"cpu {sample.cpu_us:5.0f} µs/req")
        finally:
            for server in servers.values():
                server.stop()
        rows += [(backend, label, found) for label, found in samples.items()]
    print(render(rows, args))


def render(rows: list[tuple[str, str, list[run.Sample]]], args: argparse.Namespace) -> str:
    lines = [f"`bench/pipeline.py --backends {args.backends} --size {args.size} --reps {args.reps}"
             f" --duration {args.duration}` (wrk -t{args.threads} -c{args.connections}; medians)",
             "", "| backend | scenario | req/s | × bare ASGI | CPU µs/req |", "|---|---|---:|---:|---:|"]
    ceiling: dict[str, float] = {}
    for backend, label, found in rows:
        rps = statistics.median(s.rps for s in found)
        cpu = statistics.median(s.cpu_us for s in found)
        if label.startswith("bare"):
            ceiling[backend] = rps
        share = rps / ceiling[backend] if ceiling.get(backend) else float("nan")
        lines.append(f"| {backend} | {label} | {rps:,.0f} | {share:.2f} | {cpu:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
