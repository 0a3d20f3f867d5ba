"""Server benchmarks: account_check and imports against a trivial endpoint, 10k to 10M accounts.

    make bench                 # the full run (10k, 1M and 10M accounts): writes docs/benchmarks.md
    make bench-quick           # 10k accounts only, shorter: prints the table (about 2 minutes)
    .venv/bin/python bench/run.py --sizes 10k,1M --backends sqlite --reps 5 --output -

For each backend (SQLite, PostgreSQL) and database size it loads the accounts once with
``timserver accounts load`` (cached in the bench data folder, ``$TIMSERVER_BENCH_DATA`` or
``~/.cache/timserver-bench``, and in PostgreSQL databases ``timserver_bench_<size>``), starts
``timserver serve`` on loopback with the hidden trivial endpoint (``TIMSERVER_BENCH_ENDPOINTS=1``)
and no rate limits, and drives ``wrk`` (installed with apt-get when missing) through
``bench/wrk/scenario.lua``. Each repetition runs every scenario once, in turn, so the trivial
endpoint is measured next to the others; figures are medians over the repetitions. Server CPU
per request comes from ``/proc/PID/stat`` (utime + stime of the server process, all threads);
the database's from its backends' (PostgreSQL) ``/proc`` entries. Imports go to a second app,
emptied after each repetition, so the checked app keeps exactly SIZE accounts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk" / "scenario.lua"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/run.py: generated from here to the end marker; edit bench/run.py instead -->"
END = "<!-- bench/run.py: end -->"

READ_APP, WRITE_APP = 1400000001, 1400000002
KEY = "b3f1" * 16
ADMIN = "administrator"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIZES = {"10k": 10_000, "1M": 1_000_000, "10M": 10_000_000}
ACCESS_LOG = "(access log on)"


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str  # the Lua script's MODE
    path: str
    items: int  # UserIDs a call
    accounts_per_call: int  # for accounts/s (0: not an account command)


V4 = "/v4/im_open_login_svc/"
SCENARIOS = (
    Scenario("trivial", "ping", "/_bench/ping", 1, 0),
    Scenario("check_1", "check", V4 + "account_check", 1, 1),
    Scenario("check_100", "check", V4 + "account_check", 100, 100),
    Scenario("import_1", "import", V4 + "account_import", 1, 1),
    Scenario("multi_100", "multi", V4 + "multiaccount_import", 100, 100),
)
LABELS = {"trivial": "trivial endpoint (ceiling)", "check_1": "account_check, 1 UserID",
          "check_100": "account_check, 100 UserIDs", "import_1": "account_import (1 new)",
          "multi_100": "multiaccount_import, 100 new"}


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU per request
    db_cpu_us: float | None  # database backends' CPU per request (PostgreSQL)
    requests: int
    failed: int


@dataclass
class Result:
    backend: str
    size: str
    scenario: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = [getattr(s, name) for s in self.samples if getattr(s, name) is not None]
        return statistics.median(values) if values else None


# --- the machine and the tools -------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    say("wrk is missing: installing the Debian package with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed; install it (apt-get install wrk) and rerun")
    return found


def machine(pg_url: str | None) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    info = {
        "nproc": str(os.cpu_count()), "cpu": cpu, "memory": f"{int(mem) / 1024 / 1024:.0f} GB",
        "kernel": platform.release(), "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True,
                              text=True).stdout.split(" Copyright")[0].strip(),
    }
    from importlib.metadata import version
    for name in ("timserver", "uvicorn", "starlette", "msgspec", "asyncpg", "uvloop", "httptools"):
        try:
            info[name] = version(name)
        except Exception:
            info[name] = "-"
    if pg_url:
        info["postgresql"] = asyncio.run(_pg_version(pg_url))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    info["commit"] = (commit or "-") + (" + uncommitted changes in src/" if dirty else "")
    return info


async def _pg_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(f"{url}/postgres")
    try:
        return (await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


# --- data: one accounts file and one loaded database per size ----------------------------------


def accounts_file(data: Path, size: int) -> Path:
    path = data / f"accounts-{size}.txt"
    if not path.exists():
        partial = path.with_suffix(".partial")
        with partial.open("w") as f:
            step = 1_000_000
            for start in range(1, size + 1, step):
                f.write("".join(f"u{i:08d}\n" for i in range(start, min(start + step, size + 1))))
        partial.rename(path)
    return path


def db_url(backend: str, data: Path, label: str, pg_url: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{data / f'sqlite-{label}.db'}"
    return f"{pg_url}/timserver_bench_{label.lower()}"


async def _prepare_apps(url: str, size: int) -> bool:
    """Make both apps (limits lifted); True when the read app already holds ``size`` accounts."""
    from timserver.protocol.commands import BY_NAME
    from timserver.service import apps as app_rules
    from timserver.storage import make_storage

    storage = make_storage(url)
    await storage.open()
    try:
        for sdkappid in (READ_APP, WRITE_APP):
            if await storage.get_app(sdkappid) is None:
                await app_rules.create_app(storage, sdkappid=sdkappid, key=KEY, admins=(ADMIN,))
            app = await storage.get_app(sdkappid)
            for name in BY_NAME:
                if app.limits.get(name) != 0:
                    await storage.update_app(sdkappid, limit=(name, 0))
        await storage.reset_accounts(WRITE_APP)
        return await storage.count_accounts(READ_APP) == size
    finally:
        await storage.close()


async def _reset_writes(url: str) -> None:
    from timserver.storage import make_storage

    storage = make_storage(url)
    await storage.open()
    try:
        await storage.reset_accounts(WRITE_APP)
    finally:
        await storage.close()


async def _pg_recreate(pg_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{pg_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def ensure_loaded(backend: str, label: str, data: Path, pg_url: str) -> tuple[str, float | None]:
    """The database URL with SIZE accounts in the read app; the load's seconds if loaded now."""
    size = SIZES[label]
    url = db_url(backend, data, label, pg_url)
    if backend == "postgres":
        asyncio.run(_pg_ensure_database(pg_url, url.rsplit("/", 1)[1]))
    try:
        if asyncio.run(_prepare_apps(url, size)):
            return url, None
    except Exception as exc:  # a broken cache: start over
        say(f"  {backend} {label}: cached database unusable ({exc}); loading it again")
    if backend == "sqlite":
        path = Path(url[len("sqlite:///"):])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(_pg_recreate(pg_url, url.rsplit("/", 1)[1]))
    asyncio.run(_prepare_apps(url, 0))
    source = accounts_file(data, size)
    say(f"  {backend} {label}: loading {size:,} accounts with `timserver accounts load`")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "timserver", "accounts", "load", str(source), "--db", url,
                    "--sdkappid", str(READ_APP), "--no-progress"], check=True)
    seconds = time.monotonic() - started
    if backend == "postgres":
        asyncio.run(_pg_analyze(url))
    if not asyncio.run(_prepare_apps(url, size)):
        raise SystemExit(f"{backend} {label}: the load did not leave {size} accounts")
    return url, seconds


async def _pg_ensure_database(pg_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{pg_url}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _pg_analyze(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE accounts")
    finally:
        await conn.close()


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, log: Path, extra: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        env = {**os.environ, "TIMSERVER_BENCH_ENDPOINTS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timserver", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--db", url, "--no-console", "--log-level", "warning",
             *extra], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready(log)

    def wait_ready(self, log: Path, timeout: float = 60) -> None:
        """Until ``GET /healthz`` answers 200 (any server under test: the bare one too)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(100).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"the server did not start; see {log}")

    def cpu_seconds(self) -> float:
        return proc_cpu(self.proc.pid)

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return rss / 1024, hwm / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class PgBackends:
    """CPU of the PostgreSQL backends serving one database (found in pg_stat_activity)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = url.rsplit("/", 1)[1]

    def snapshot(self) -> dict[int, float]:
        return {pid: proc_cpu(pid) for pid in asyncio.run(self._pids())}

    async def _pids(self) -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(self.url.rsplit("/", 1)[0] + "/postgres")
        try:
            return [r["pid"] for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.name)]
        finally:
            await conn.close()

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --- one wrk run --------------------------------------------------------------------------------


def run_wrk(wrk: str, server: Server, scenario: Scenario, size: int, seconds: float,
            connections: int, threads: int, tag: str, app: int,
            pg: PgBackends | None) -> Sample:
    from timserver import usersig

    sig = usersig.generate(app, KEY, ADMIN, 86400 * 30, now=int(time.time()))
    query = f"sdkappid={app}&identifier={ADMIN}&usersig={sig}&contenttype=json"
    db_before = pg.snapshot() if pg else None
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{round(seconds)}s", "--latency",
         "-s", str(LUA), server.base, "--", scenario.mode, scenario.path, query,
         str(scenario.items), str(size), tag],
        capture_output=True, text=True, timeout=seconds + 60)
    cpu = server.cpu_seconds() - cpu_before
    db_cpu = PgBackends.spent(db_before, pg.snapshot()) if pg and db_before is not None else None
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({scenario.name}): {out.stdout}\n{out.stderr}")
    figures = json.loads(line[len("BENCH "):])
    requests = max(figures["requests"], 1)
    failed = figures["failed"] + figures["socket_errors"] + figures["non2xx"]
    if failed:
        say(f"    {scenario.name}: {failed} failed calls! {out.stderr.strip()[:300]}")
    return Sample(rps=figures["requests"] / (figures["duration_us"] / 1e6),
                  p50_ms=figures["p50_us"] / 1000, p99_ms=figures["p99_us"] / 1000,
                  cpu_us=cpu / requests * 1e6,
                  db_cpu_us=db_cpu / requests * 1e6 if db_cpu is not None else None,
                  requests=figures["requests"], failed=failed)


# --- the run ------------------------------------------------------------------------------------


def bench_database(args: argparse.Namespace, wrk: str, backend: str, label: str, url: str,
                   scenarios: list[Scenario], *, access_log: bool = False,
                   ) -> tuple[list[Result], dict[str, float]]:
    size = SIZES[label]
    shown = f"{label} {ACCESS_LOG}" if access_log else label
    results = {s.name: Result(backend, shown, s.name) for s in scenarios}
    server = Server(url, args.data / f"server-{backend}-{label}.log",
                    [*([] if access_log else ["--no-access-log"]), *args.server_args])
    pg = PgBackends(url) if backend == "postgres" else None
    peak = 0.0
    try:
        for warm in scenarios:  # the first calls fill caches and the connection pool
            run_wrk(wrk, server, warm, size, args.warmup, args.connections, args.threads,
                    f"w{warm.name[:2]}", WRITE_APP if warm.mode in ("import", "multi")
                    else READ_APP, None)
        asyncio.run(_reset_writes(url))
        for rep in range(args.reps):
            for scenario in scenarios:
                app = WRITE_APP if scenario.mode in ("import", "multi") else READ_APP
                sample = run_wrk(wrk, server, scenario, size, args.duration, args.connections,
                                 args.threads, f"{rep}{scenario.name[:2]}", app, pg)
                results[scenario.name].samples.append(sample)
                peak = max(peak, server.memory_mb()[1])
                say(f"    {backend:8} {label:>4} rep {rep + 1}: {scenario.name:10} "
                    f"{sample.rps:8,.0f} req/s  p50 {sample.p50_ms:6.2f} ms  "
                    f"p99 {sample.p99_ms:6.2f} ms  cpu {sample.cpu_us:6.0f} µs/req")
            asyncio.run(_reset_writes(url))
        rss, hwm = server.memory_mb()
    finally:
        server.stop()
    return list(results.values()), {"rss_mb": rss, "peak_rss_mb": max(hwm, peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10k accounts only, 2 repetitions of 3 s: about 2 minutes")
    parser.add_argument("--sizes", help="comma-separated, of 10k,1M,10M [10k,1M,10M; quick: 10k]")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--reps", type=int, help="repetitions per scenario [3; quick: 2]")
    parser.add_argument("--duration", type=int, help="seconds per wrk run [5; quick: 3]")
    parser.add_argument("--warmup", type=int, default=1, help="seconds per warm-up run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--pg", default=os.environ.get("TIMSERVER_BENCH_PG",
                                                       "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server (the bench creates timserver_bench_* databases)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "TIMSERVER_BENCH_DATA", Path.home() / ".cache" / "timserver-bench")),
        help="where loaded databases are cached between runs")
    parser.add_argument("--output", help="markdown to write: - for stdout only "
                                         "[docs/benchmarks.md; quick: DATA/benchmarks-quick.md]")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--no-access-log-runs", action="store_true",
                        help="skip the extra runs with the access log on (full runs make them)")
    parser.add_argument("--server-arg", dest="server_args", action="append", default=[],
                        help="extra argument for timserver serve (repeatable)")
    parser.add_argument("--from-json", type=Path, help=argparse.SUPPRESS)  # render saved results
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.from_json:
        return rerender(args)
    args.sizes = (args.sizes or ("10k" if args.quick else "10k,1M,10M")).split(",")
    args.reps = args.reps or (2 if args.quick else 3)
    args.duration = args.duration or (3 if args.quick else 5)
    backends = args.backends.split(",")
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    if scenarios[0].name != "trivial":
        scenarios.insert(0, SCENARIOS[0])  # every ratio needs the ceiling of the same run
    output = args.output or (str(args.data / "benchmarks-quick.md") if args.quick else str(DOC))
    args.data.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    wrk = ensure_wrk()
    if "postgres" in backends:
        try:
            asyncio.run(_pg_version(args.pg))
        except Exception as exc:
            raise SystemExit(f"PostgreSQL is not reachable at {args.pg} ({exc}): start it, point "
                             "--pg (or $TIMSERVER_BENCH_PG) at one, or use --backends sqlite") from None
    info = machine(args.pg if "postgres" in backends else None)
    loads: dict[str, float] = {}
    results: list[Result] = []
    memory: dict[str, dict[str, float]] = {}
    for backend in backends:
        for label in args.sizes:
            say(f"{backend} {label}:")
            url, seconds = ensure_loaded(backend, label, args.data, args.pg)
            if seconds is not None:
                loads[f"{backend} {label}"] = seconds
            found, mem = bench_database(args, wrk, backend, label, url, scenarios)
            results += found
            memory[f"{backend} {label}"] = mem
            if label == args.sizes[0] and not args.quick and not args.no_access_log_runs:
                found, mem = bench_database(args, wrk, backend, label, url, scenarios[:2],
                                            access_log=True)  # what the access log costs
                results += found
                memory[f"{backend} {label} {ACCESS_LOG}"] = mem
    elapsed = time.monotonic() - started
    command = "make bench" + (" ARGS=--quick" if args.quick else "")
    if sys.argv[1:] and sys.argv[1:] != ["--quick"]:
        command = "bench/run.py " + " ".join(sys.argv[1:])
    text = render(results, memory, loads, info, args, command, elapsed)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "memory": memory, "loads": loads, "elapsed": elapsed,
            "command": command, "reps": args.reps, "duration": args.duration,
            "connections": args.connections, "results": [asdict(r) for r in results]}, indent=1))
    print(text)
    if output != "-":
        write_section(Path(output), text)
        say(f"written to {output} ({elapsed:.0f} s)")


def rerender(args: argparse.Namespace) -> None:
    """Write the report of results saved with --json (after editing the report's text)."""
    saved = json.loads(args.from_json.read_text())
    results = [Result(r["backend"], r["size"], r["scenario"], [Sample(**x) for x in r["samples"]])
               for r in saved["results"]]
    for name in ("reps", "duration", "connections"):
        setattr(args, name, saved.get(name, {"reps": 3, "duration": 5, "connections": 32}[name]))
    text = render(results, saved["memory"], saved["loads"], saved["machine"], args,
                  args.command or saved.get("command", "make bench"), saved.get("elapsed", 0.0))
    print(text)
    if args.output != "-":
        write_section(Path(args.output or DOC), text)


# --- the report ---------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


TARGETS = (  # scenario, minimum share of the trivial endpoint's req/s, which backends
    ("check_1", 0.7, ("sqlite", "postgres")),
    ("check_100", 0.2, ("sqlite", "postgres")),
    ("multi_100", 0.03, ("sqlite",)),
)


def render(results: list[Result], memory: dict[str, dict[str, float]], loads: dict[str, float],
           info: dict[str, str], args: argparse.Namespace, command: str, elapsed: float) -> str:
    by = {(r.backend, r.size, r.scenario): r for r in results}
    lines = [BEGIN, "", "## Server throughput: account_check and imports, 10k to 10M accounts", ""]
    lines += [
        "**What.** One `timserver serve` process (one worker) on loopback, rate limits lifted "
        "(limit 0 on every command) and the access log off (`--no-access-log`; the rows marked "
        f"*{ACCESS_LOG}* come from a second server with the default, one log line per call, "
        "written to a file), other settings at their defaults (journal, metrics, emulator hook "
        "on), driven by `wrk` (one thread, "
        f"{args.connections} connections, keep-alive) with `bench/wrk/scenario.lua`, which varies "
        "the UserIDs of every call and checks every answer (HTTP 200, `ErrorCode` 0, no "
        "`FailAccounts`). The ceiling is a hidden trivial endpoint of the same server "
        "(`TIMSERVER_BENCH_ENDPOINTS=1`: a fixed 51-byte JSON answer, same Starlette/uvicorn "
        "stack, sent the same requests as `account_check` with 1 UserID), measured in the same "
        "run: each repetition runs every scenario once, in turn, and the figures are medians of "
        f"{args.reps} repetitions of {args.duration:g} s. `account_check` asks for UserIDs drawn at "
        "random over the whole database, half of them imported; the imports create new accounts "
        "(in a second app, emptied after each repetition, so the checked app holds exactly the "
        "stated number of accounts). Databases are loaded with `timserver accounts load` "
        "(COPY on PostgreSQL, batched transactions on SQLite) and cached between runs.",
        "",
        "Columns: **req/s**; **× trivial**, the share of the trivial endpoint's req/s in the same "
        "run; **accounts/s** (req/s × accounts per call); **p50 / p99** latency as wrk sees it; "
        "**CPU/req**, CPU time of the server process (all threads; `/proc/PID/stat` utime + "
        "stime) per request; **DB CPU/req**, that of the PostgreSQL backends serving it. SQLite "
        "runs `synchronous=FULL` (WAL): a write is answered after its group commit's fsync.",
        "",
        f"**Command:** `{command}` (from the repository root; {elapsed / 60:.0f} min for this run, "
        "loads of databases not yet cached excluded).",
        "",
        f"**Machine:** {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, Linux "
        f"{info['kernel']}; client (wrk), server and database on the same machine, which may "
        "have been running other work. **Versions:** timserver " + info["timserver"]
        + f" ({info['commit']}), Python {info['python']}, uvicorn {info['uvicorn']} (uvloop "
        f"{info['uvloop']}, httptools {info['httptools']}), Starlette {info['starlette']}, "
        f"msgspec {info['msgspec']}, SQLite {info['sqlite']}, "
        + (f"PostgreSQL {info['postgresql']} (asyncpg {info['asyncpg']}), "
           if "postgresql" in info else "")
        + f"{info['wrk']}. Date: {datetime.date.today().isoformat()}.",
        "",
    ]
    sizes = list(dict.fromkeys(r.size for r in results))
    backends = list(dict.fromkeys(r.backend for r in results))
    for backend in backends:
        pg = backend == "postgres"
        lines += [f"### {'PostgreSQL' if pg else 'SQLite'}", ""]
        head = "| accounts | scenario | req/s | × trivial | accounts/s | p50 ms | p99 ms | CPU/req µs |"
        rule = "|---|---|---:|---:|---:|---:|---:|---:|"
        if pg:
            head += " DB CPU/req µs |"
            rule += "---:|"
        lines += [head, rule]
        for size in sizes:
            ceiling = by.get((backend, size, "trivial"))
            top = ceiling.median("rps") if ceiling else None
            for s in SCENARIOS:
                r = by.get((backend, size, s.name))
                if r is None:
                    continue
                rps = r.median("rps")
                share = f"{rps / top:.2f}" if top and rps else "-"
                accounts = fmt(rps * s.accounts_per_call) if s.accounts_per_call and rps else "-"
                row = (f"| {size} | {LABELS[s.name]} | {fmt(rps)} | {share} | {accounts} | "
                       f"{fmt(r.median('p50_ms'), 2)} | {fmt(r.median('p99_ms'), 2)} | "
                       f"{fmt(r.median('cpu_us'))} |")
                if pg:
                    row += f" {fmt(r.median('db_cpu_us'))} |"
                lines.append(row)
        lines.append("")
    lines += ["### Targets", "", "| target | backend | measured | |", "|---|---|---|---|"]
    for scenario, share, where in TARGETS:
        for backend in backends:
            if backend not in where:
                continue
            for size in sizes:
                if ACCESS_LOG in size:
                    continue
                r, t = by.get((backend, size, scenario)), by.get((backend, size, "trivial"))
                if r is None or t is None:
                    continue
                got = r.median("rps") / t.median("rps")  # type: ignore[operator]
                lines.append(f"| {LABELS[scenario]} ≥ {share:g} × trivial | {backend} {size} | "
                             f"{got:.2f} × | {'met' if got >= share else 'MISSED'} |")
    if "10k" in sizes and "10M" in sizes:
        for backend in backends:
            for s in SCENARIOS[1:]:
                small, big = by.get((backend, "10k", s.name)), by.get((backend, "10M", s.name))
                if small is None or big is None:
                    continue
                # as shares of the same run's ceiling: the two runs are minutes apart
                raw = big.median("rps") / small.median("rps")  # type: ignore[operator]
                ratio = raw / (by[(backend, "10M", "trivial")].median("rps")  # type: ignore[operator]
                               / by[(backend, "10k", "trivial")].median("rps"))
                lines.append(f"| {LABELS[s.name]}: 10M ≥ 0.9 × 10k | {backend} | {ratio:.2f} × "
                             f"(raw req/s: {raw:.2f} ×) | {'met' if ratio >= 0.9 else 'MISSED'} |")
    peak = max(m["peak_rss_mb"] for m in memory.values())
    lines.append(f"| server RSS < 150 MB throughout | all | peak {peak:.0f} MB | "
                 f"{'met' if peak < 150 else 'MISSED'} |")
    lines += ["", "The 10M / 10k ratio compares each scenario's share of the trivial endpoint at "
              "10M with its share at 10k (the two are measured minutes apart, so raw req/s would "
              "also compare the machine's load at two moments).", ""]
    lines += ["Peak server RSS (VmHWM) per run: " + ", ".join(
        f"{k} {v['peak_rss_mb']:.0f} MB" for k, v in memory.items()) + "."]
    if loads:
        lines += ["", "Loads done by this run (`timserver accounts load`, wall time): " + ", ".join(
            f"{k}: {v:.0f} s ({SIZES[k.split()[1]] / v:,.0f} accounts/s)"
            for k, v in loads.items()) + "."]
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


if __name__ == "__main__":
    main()
