"""Two versions of the server side by side, in one run: before/after figures of a change.

    .venv/bin/python bench/compare.py REV_OR_DIR [--reps 5] [--duration 3] [--backend sqlite]

Checks REV out into a temporary worktree (or takes a source tree given as a directory), starts
`timserver serve` from it and from this checkout on the same loaded 10k database (as
`make bench` loads it), and drives both with wrk in turn: each repetition runs every scenario
on A, then on B, so that both meet the same moments of a shared machine. Prints the medians of
req/s, CPU per request and the share of each server's own trivial endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import run as bench

SCENARIO_NAMES = ("trivial", "check_1", "check_100", "import_1", "multi_100")


def tree_of(spec: str, keep: Path) -> Path:
    if Path(spec).is_dir():
        return Path(spec).resolve()
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(keep), spec], check=True,
                   cwd=bench.ROOT, capture_output=True)
    return keep


def start(tree: Path, url: str, log: Path) -> bench.Server:
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree / "src")  # before the editable install's path
    try:
        return bench.Server(url, log, ["--no-access-log"])
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="a git revision or a source tree (the A side)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--scenarios", default="trivial,check_1,check_100")
    parser.add_argument("--pg", default=os.environ.get("TIMSERVER_BENCH_PG",
                                                       "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "TIMSERVER_BENCH_DATA", Path.home() / ".cache" / "timserver-bench")))
    args = parser.parse_args()
    names = args.scenarios.split(",")
    scenarios = [s for s in bench.SCENARIOS if s.name in names]
    if scenarios[0].name != "trivial":
        scenarios.insert(0, bench.SCENARIOS[0])
    wrk = bench.ensure_wrk()
    args.data.mkdir(parents=True, exist_ok=True)
    url, _ = bench.ensure_loaded(args.backend, "10k", args.data, args.pg)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"A": tree_of(args.before, Path(tmp) / "before"), "B": bench.ROOT}
        servers = {side: start(tree, url, Path(tmp) / f"{side}.log")
                   for side, tree in trees.items()}
        pg = bench.PgBackends(url) if args.backend == "postgres" else None
        samples: dict[tuple[str, str], list[bench.Sample]] = {}
        try:
            for side, server in servers.items():  # warm-up
                for s in scenarios:
                    bench.run_wrk(wrk, server, s, 10_000, 1, 32, 1, f"w{side}{s.name[:2]}",
                                  bench.WRITE_APP if s.mode in ("import", "multi")
                                  else bench.READ_APP, None)
            for rep in range(args.reps):
                for s in scenarios:
                    for side, server in servers.items():
                        app = bench.WRITE_APP if s.mode in ("import", "multi") else bench.READ_APP
                        sample = bench.run_wrk(wrk, server, s, 10_000, args.duration, 32, 1,
                                               f"{rep}{side}{s.name[:2]}", app, pg)
                        samples.setdefault((side, s.name), []).append(sample)
                        print(f"rep {rep + 1} {side} {s.name:10} {sample.rps:8,.0f} req/s "
                              f"cpu {sample.cpu_us:5.0f} µs/req", flush=True)
                asyncio.run(bench._reset_writes(url))
        finally:
            for server in servers.values():
                server.stop()
            if not Path(args.before).is_dir():
                subprocess.run(["git", "worktree", "remove", "--force", str(trees["A"])],
                               cwd=bench.ROOT, capture_output=True)
    print(f"\n{args.backend}, 10k accounts; A = {args.before}, B = this checkout; medians of "
          f"{args.reps} runs of {args.duration} s (wrk, 1 thread, 32 connections)\n")
    print("| scenario | A req/s | B req/s | B/A | A × trivial | B × trivial "
          "| A CPU/req µs | B CPU/req µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    med = {k: (statistics.median(x.rps for x in v), statistics.median(x.cpu_us for x in v))
           for k, v in samples.items()}
    for s in scenarios:
        a, b = med[("A", s.name)], med[("B", s.name)]
        ta, tb = med[("A", "trivial")][0], med[("B", "trivial")][0]
        print(f"| {bench.LABELS[s.name]} | {a[0]:,.0f} | {b[0]:,.0f} | {b[0] / a[0]:.2f} | "
              f"{a[0] / ta:.2f} | {b[0] / tb:.2f} | {a[1]:.0f} | {b[1]:.0f} |")


if __name__ == "__main__":
    main()
