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
    "usersig": ("src/timserver/usersig.py", ["tests/test_usersig_edges.py", "tests/test_usersig.py"]),
    "validate": ("src/timserver/protocol/validate.py", ["tests/test_validate_edges.py", "tests/test_validate_fast.py"]),
    "rules": (
        "src/timserver/service/rules.py",
        ["tests/test_rules_edges.py", "tests/test_properties.py::test_userid_problems_is_userid_problem_of_each"],
    ),
    "ratelimit": ("src/timserver/service/ratelimit.py", ["tests/test_ratelimit_edges.py", "tests/test_ratelimit.py"]),
    "accounts": (
        "src/timserver/service/accounts.py",
        ["tests/test_accounts_edges.py", "tests/test_accounts.py", "tests/test_logins_profiles.py"],
    ),
}
# The SQLite half of the backend-parametrised tests: the modules above know no storage engine.
PYTEST_ARGS = ["-p", "no:cacheprovider", "-k", "not postgres"]
KILLED = {"killed", "timeout"}  # a test failed, or the mutant made a test hang
# mutmut runs pytest inside its own process, so a Hypothesis profile loaded before it holds for
# every run: no deadline (a mutant runs slower, through mutmut's trampolines, and a late example
# is not a failure of the code) and no shrinking (a failing example is enough to kill a mutant).
BOOT = """
import sys
from hypothesis import Phase, settings
settings.register_profile("mutation", deadline=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("mutation")
from mutmut.__main__ import cli
sys.argv[0] = "mutmut"
cli()
"""


def mutmut(
    folder: Path, *args: str, timeout: float | None = None, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    out = open(log, "a") if log else subprocess.PIPE
    try:
        return subprocess.run(
            ["nice", "-n", "10", sys.executable, "-c", BOOT, *args],
            cwd=folder,
            text=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
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
        f"pytest_add_cli_args =\n    {lines(PYTEST_ARGS)}\n"
    )
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
        mutmut(folder, "run", "--max-children", str(args.jobs), *names, timeout=args.minutes * 60, log=log)
    except subprocess.TimeoutExpired:
        print(f"{name}: stopped after its budget of {args.minutes} min (run again to go on)")
    print(f"{name}: {time.monotonic() - started:.0f} s (mutmut's output: {log.relative_to(ROOT)})")
    return results(folder)


# Survivors a person has shown equivalent (docs/testing.md says why, one by one): the function,
# the line as written and the line as mutated. A change to either line drops the entry, so the
# mutant is looked at again.
EQUIVALENT: list[tuple[str, str, str]] = [
    # rules.py, userid_problems: the quick path of a batch of usual UserIDs; what it lets
    # through, the per-item check answers alike
    ("userid_problems", 'joined = "".join(user_ids)', 'joined = "XXXX".join(user_ids)'),
    (
        "userid_problems",
        "if 0 not in sizes and max(sizes) <= MAX_USERID_BYTES:",
        "if 0 not in sizes and max(sizes) < MAX_USERID_BYTES:",
    ),
    # accounts.py: zip(..., strict=True) over lists of one length by construction (the ids and
    # their problems; the writes and the storage's one answer per write; the ids and their
    # results): strict never fires, so turning it off changes nothing
    (
        "account_check",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=True) if not problem])",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=None) if not problem])",
    ),
    (
        "account_check",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=True) if not problem])",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, ) if not problem])",
    ),
    (
        "account_check",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=True) if not problem])",
        "app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=False) if not problem])",
    ),
    (
        "account_check",
        "for uid, problem in zip(ids, problems, strict=True)])",
        "for uid, problem in zip(ids, problems, strict=None)])",
    ),
    (
        "account_check",
        "for uid, problem in zip(ids, problems, strict=True)])",
        "for uid, problem in zip(ids, problems, )])",
    ),
    (
        "account_check",
        "for uid, problem in zip(ids, problems, strict=True)])",
        "for uid, problem in zip(ids, problems, strict=False)])",
    ),
    (
        "account_delete",
        "for uid, r in zip(ids, results, strict=True)]",
        "for uid, r in zip(ids, results, strict=None)]",
    ),
    ("account_delete", "for uid, r in zip(ids, results, strict=True)]", "for uid, r in zip(ids, results, )]"),
    (
        "account_delete",
        "for uid, r in zip(ids, results, strict=True)]",
        "for uid, r in zip(ids, results, strict=False)]",
    ),
    (
        "multiaccount_import",
        "for write, ok in zip(writes, applied, strict=True):",
        "for write, ok in zip(writes, applied, strict=None):",
    ),
    (
        "multiaccount_import",
        "for write, ok in zip(writes, applied, strict=True):",
        "for write, ok in zip(writes, applied, ):",
    ),
    (
        "multiaccount_import",
        "for write, ok in zip(writes, applied, strict=True):",
        "for write, ok in zip(writes, applied, strict=False):",
    ),
    # accounts.py, multiaccount_import: `failed` is an ordered set (only its keys are read), and
    # the field name given to profile_problem only shapes a reason this command never shows
    ("multiaccount_import", "failed[uid] = None", 'failed[uid] = ""'),
    ("multiaccount_import", "failed[item.UserID] = None", 'failed[item.UserID] = ""'),
    ("multiaccount_import", "failed[write.user_id] = None", 'failed[write.user_id] = ""'),
    (
        "multiaccount_import",
        'if (userid_problem(item.UserID) or profile_problem("Nick", item.Nick)',
        "if (userid_problem(item.UserID) or profile_problem(None, item.Nick)",
    ),
    (
        "multiaccount_import",
        'if (userid_problem(item.UserID) or profile_problem("Nick", item.Nick)',
        'if (userid_problem(item.UserID) or profile_problem("XXNickXX", item.Nick)',
    ),
    (
        "multiaccount_import",
        'if (userid_problem(item.UserID) or profile_problem("Nick", item.Nick)',
        'if (userid_problem(item.UserID) or profile_problem("nick", item.Nick)',
    ),
    (
        "multiaccount_import",
        'if (userid_problem(item.UserID) or profile_problem("Nick", item.Nick)',
        'if (userid_problem(item.UserID) or profile_problem("NICK", item.Nick)',
    ),
    (
        "multiaccount_import",
        'or profile_problem("FaceUrl", item.FaceUrl)):',
        "or profile_problem(None, item.FaceUrl)):",
    ),
    (
        "multiaccount_import",
        'or profile_problem("FaceUrl", item.FaceUrl)):',
        'or profile_problem("XXFaceUrlXX", item.FaceUrl)):',
    ),
    (
        "multiaccount_import",
        'or profile_problem("FaceUrl", item.FaceUrl)):',
        'or profile_problem("faceurl", item.FaceUrl)):',
    ),
    (
        "multiaccount_import",
        'or profile_problem("FaceUrl", item.FaceUrl)):',
        'or profile_problem("FACEURL", item.FaceUrl)):',
    ),
    # validate.py, _top_level_lists: whether the one-pass msgspec path may be taken; these keep
    # the same answer for every request struct (Annotated is stripped either way) or only turn
    # the fast path off for list[str], whose answers equal the converter's
    # (test_fast_path_equals_the_converter)
    (
        "_top_level_lists",
        "for name, tp in typing.get_type_hints(cls, include_extras=True).items():",
        "for name, tp in typing.get_type_hints(cls, include_extras=None).items():",
    ),
    (
        "_top_level_lists",
        "for name, tp in typing.get_type_hints(cls, include_extras=True).items():",
        "for name, tp in typing.get_type_hints(cls, ).items():",
    ),
    (
        "_top_level_lists",
        "for name, tp in typing.get_type_hints(cls, include_extras=True).items():",
        "for name, tp in typing.get_type_hints(cls, include_extras=False).items():",
    ),
    ("_top_level_lists", "elif item is not str:", "elif item is str:"),
    # ratelimit.py, SharedFileLimiter: SQLite's own default busy timeout is 5 s
    (
        "__init__",
        "self._conn = sqlite3.connect(path, isolation_level=None, timeout=5.0,",
        "self._conn = sqlite3.connect(path, isolation_level=None, timeout=6.0,",
    ),
    (
        "__init__",
        "self._conn = sqlite3.connect(path, isolation_level=None, timeout=5.0,",
        "self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)",
    ),
    # validate.py: the one-pass path turned off for some bodies (a one-item batch, any body),
    # whose converter answers the same; and a path of None, read like "" (for its truth)
    (
        "_size_ok",
        "return value is UNSET or 1 <= len(value) <= max_items",
        "return value is UNSET or 2 <= len(value) <= max_items",
    ),
    (
        "_size_ok",
        "return value is UNSET or 1 <= len(value) <= max_items",
        "return value is UNSET or 1 < len(value) <= max_items",
    ),
    (
        "_top_level_lists",
        "if isinstance(item, type) and issubclass(item, Struct):",
        "if isinstance(item, type) or issubclass(item, Struct):",
    ),
    ("__call__", "request = msgspec.convert(body, self._request)", "request = msgspec.convert(None, self._request)"),
    ("__call__", 'return self._convert(body, "")', "return self._convert(body, None)"),
]


def function_of(mutant: str) -> str:
    """``timserver.x.xǁClassǁmethod__mutmut_3`` → ``method``; ``...x_func__mutmut_3`` → ``func``."""
    last = mutant.rpartition(".")[2].rpartition("__mutmut_")[0]
    return last.rpartition("ǁ")[2] if "ǁ" in last else last.removeprefix("x_")


def diff(folder: Path, mutant: str) -> tuple[str, str]:
    """The original line and the mutated one."""
    lines = mutmut(folder, "show", mutant).stdout.splitlines()
    old = [x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")]
    new = [x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")]
    return (old[0] if old else "", new[0] if new else "")


def equivalent_by_rule(old: str, new: str) -> bool:
    """Only the letter case changed, of a codec name (Python looks codecs up in any case) or of
    SQL text (SQLite reads keywords and names in any case). Anything else is for a person."""
    if old == new or old.lower() != new.lower():
        return False
    changed = {a.lower() for a, b in zip(old.split('"'), new.split('"'), strict=False) if a != b}
    return changed <= {"utf-8", "ascii"} or (".execute(" in old and "?" not in changed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"modules to test (default: all of {', '.join(MODULES)})"
    )
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--survivors", action="store_true", help="test again only the mutants that survived")
    parser.add_argument("--minutes", type=float, default=10, help="time budget per module")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--report", action="store_true", help="only report the results kept from earlier runs")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}: choose among {', '.join(MODULES)}")
    os.environ.setdefault("TIMSERVER_TEST_REDIS", "redis://127.0.0.1:6379/14")
    rows = []
    for name in args.names or list(MODULES):
        folder = prepare(name, fresh=args.fresh and not args.report)
        status = results(folder) if args.report else run(name, args)
        killed = sum(what in KILLED for what in status.values())
        untested = sum(what == "not checked" for what in status.values())
        rule, shown, left = [], [], []
        for mutant, what in sorted(status.items()):
            if what in KILLED or what == "not checked":
                continue
            old, new = diff(folder, mutant)
            kind = (
                rule
                if equivalent_by_rule(old, new)
                else shown
                if (function_of(mutant), old, new) in EQUIVALENT
                else left
            )
            kind.append((mutant, what, old, new))
        counted = len(status) - untested - len(rule) - len(shown)
        score = 100.0 * killed / counted if counted else 0.0
        raw = 100.0 * killed / (len(status) - untested) if len(status) > untested else 0.0
        rows.append((name, len(status), untested, killed, len(rule), len(shown), raw, left, score))
    print(
        f"\n{'module':10} {'mutants':>7} {'untested':>8} {'killed':>6} {'raw':>6} "
        f"{'case-only':>9} {'shown-eq':>8} {'survived':>8} {'score':>6}"
    )
    ok = True
    for name, total, untested, killed, rule, shown, raw, left, score in rows:
        print(f"{name:10} {total:7} {untested:8} {killed:6} {raw:5.1f}% {rule:9} {shown:8} {len(left):8} {score:5.1f}%")
        ok = ok and not untested and score >= THRESHOLD
    for *_, left, _score in rows:
        for mutant, what, old, new in left:
            print(f"\n{what}: {mutant}\n  - {old}\n  + {new}")
    print(
        f"\nraw = killed / tested; score = killed / (tested - case-only - shown-eq): case-only "
        "mutants change only the letter case of a codec name or of SQL, shown-eq ones are listed "
        "in EQUIVALENT (scripts/mutation.py) and explained in docs/testing.md; the survivors "
        f"printed above are neither.\n{'Every' if ok else 'NOT every'} module is tested through "
        f"with {THRESHOLD:.0f} % killed."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
