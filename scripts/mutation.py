"""`make mutation`: mutation testing (mutmut) of the modules whose mistakes a client sees first.

Each module is run on its own, against the test files that target it (MODULES below), in a work
folder of its own (``.mutation/NAME/``: links to src/ and tests/, and the ``setup.cfg`` that tells
mutmut what to mutate and which tests to run). mutmut then runs each mutant against those of the
listed tests that call the mutated function. Only tests that run the code in the pytest process
can kill a mutant: a server in a child process imports the unmutated package.

Results are kept in the work folder, so a run that hit its time budget goes on where it stopped;
``--fresh`` starts over, ``--survivors`` tests again only the mutants that survived (after new
tests). The report counts a mutant killed when a test failed or timed out under it; the bar is
90 % killed per module. The survivors left are explained in docs/testing.md.

    python scripts/mutation.py [--fresh | --survivors] [--minutes 10] [--jobs 2] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
THRESHOLD = 90.0

# name: (module, the test files that target it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "usersig": ("src/timserver/usersig.py", [
        "tests/test_usersig_edges.py", "tests/test_usersig.py"]),
    "validate": ("src/timserver/protocol/validate.py", [
        "tests/test_validate_edges.py", "tests/test_validate_fast.py"]),
    "rules": ("src/timserver/service/rules.py", [
        "tests/test_rules_edges.py",
        "tests/test_properties.py::test_userid_problems_is_userid_problem_of_each"]),
    "ratelimit": ("src/timserver/service/ratelimit.py", [
        "tests/test_ratelimit_edges.py", "tests/test_ratelimit.py"]),
    "accounts": ("src/timserver/service/accounts.py", [
        "tests/test_accounts_edges.py", "tests/test_accounts.py"]),
}
# The SQLite half of the backend-parametrised tests: the modules above know no storage engine.
PYTEST_ARGS = ["-p", "no:cacheprovider", "-k", "not postgres"]
KILLED = {"killed", "timeout"}  # a test failed, or the mutant made a test hang


def mutmut(folder: Path, *args: str, timeout: float | None = None,
           log: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "mutmut"
    out = open(log, "a") if log else subprocess.PIPE
    try:
        return subprocess.run(["nice", "-n", "10", str(exe), *args], cwd=folder, text=True,
                              stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    finally:
        if log:
            out.close()


def prepare(name: str, fresh: bool) -> Path:
    module, tests = MODULES[name]
    folder = WORK / name
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for link in ("src", "tests", "pyproject.toml"):  # pytest's settings come with pyproject.toml
        if not (folder / link).is_symlink():
            (folder / link).symlink_to(ROOT / link)
    lines = "\n    ".join
    # pyproject.toml has no [tool.mutmut], so mutmut reads this file (one value per line).
    (folder / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = src\n"
        f"only_mutate = {module}\n"
        f"pytest_add_cli_args_test_selection =\n    {lines(tests)}\n"
        f"pytest_add_cli_args =\n    {lines(PYTEST_ARGS)}\n")
    return folder


def results(folder: Path) -> dict[str, str]:
    answer = mutmut(folder, "results", "--all", "true")
    status = {}
    for line in answer.stdout.splitlines():
        mutant, sep, what = line.strip().rpartition(": ")
        if sep and mutant.startswith("timserver."):
            status[mutant] = what
    return status


def run(name: str, args: argparse.Namespace) -> dict[str, str]:
    folder = prepare(name, args.fresh)
    log = folder / "run.log"
    names: list[str] = []
    if args.survivors:
        names = [m for m, s in results(folder).items() if s not in KILLED and s != "not checked"]
        if not names:
            return results(folder)
    started = time.monotonic()
    try:
        mutmut(folder, "run", "--max-children", str(args.jobs), *names,
               timeout=args.minutes * 60, log=log)
    except subprocess.TimeoutExpired:
        print(f"{name}: stopped after its budget of {args.minutes} min (run again to go on)")
    print(f"{name}: {time.monotonic() - started:.0f} s (mutmut's output: {log.relative_to(ROOT)})")
    return results(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"modules to test (default: all of {', '.join(MODULES)})")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--survivors", action="store_true",
                        help="test again only the mutants that survived")
    parser.add_argument("--minutes", type=float, default=10, help="time budget per module")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--list", action="store_true", help="print the survivors")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}: choose among {', '.join(MODULES)}")
    os.environ.setdefault("TIMSERVER_TEST_REDIS", "redis://127.0.0.1:6379/14")
    report = []
    for name in args.names or list(MODULES):
        status = run(name, args) if not args.list else results(prepare(name, fresh=False))
        counts: dict[str, int] = {}
        for what in status.values():
            counts[what] = counts.get(what, 0) + 1
        killed = sum(n for what, n in counts.items() if what in KILLED)
        done = len(status) - counts.get("not checked", 0)
        score = 100.0 * killed / done if done else 0.0
        report.append((name, len(status), done, killed, score, counts))
        if args.list:
            for mutant, what in sorted(status.items()):
                if what not in KILLED:
                    print(f"  {what:12} {mutant}")
    print(f"\n{'module':10} {'mutants':>8} {'tested':>7} {'killed':>7} {'score':>7}  other")
    ok = True
    for name, total, done, killed, score, counts in report:
        other = ", ".join(f"{n} {w}" for w, n in sorted(counts.items()) if w not in KILLED)
        print(f"{name:10} {total:8} {done:7} {killed:7} {score:6.1f}%  {other}")
        ok = ok and done == total and score >= THRESHOLD
    print(f"\n{'every module' if ok else 'NOT every module'} has {THRESHOLD:.0f} % of its mutants "
          "killed" + ("" if ok else " (or some are not tested yet)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
