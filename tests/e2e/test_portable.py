"""Portable state: ``timserver export`` / ``import`` and ``serve --import`` /
``--export-on-exit``, on SQLite and PostgreSQL, through the command line and a real server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from support import LiveServer, cli, fresh_postgres_database, query

from timserver import portable
from timserver.cli import main
from timserver.service import apps as app_rules
from timserver.storage import AccountWrite, App, make_storage

KEY_1 = "1" * 64
KEY_2 = "2" * 64
APP_1 = App(1400000701, KEY_1, "trial", ("boss", "ops"))
APP_2 = App(1400000702, KEY_2, "developer", ("administrator",))
MANY = 12_345  # more than two pages of portable.PAGE


async def _fill(db: str) -> None:
    """Every kind of state: apps with limits, accounts across pages, kicks (one of an account
    deleted since), fault rules with counts used, clock offsets server-wide and per app."""
    storage = make_storage(db)
    await storage.open()
    try:
        for app in (APP_1, APP_2):
            await app_rules.create_app(storage, sdkappid=app.sdkappid, key=app.key,
                                       admins=app.admins, edition=app.edition)
        await storage.update_app(APP_1.sdkappid, limit=("account_check", 7))
        await storage.update_app(APP_1.sdkappid, limit=("kick", 0))
        await storage.bulk_load(APP_2.sdkappid, (AccountWrite(f"user_{n:06d}") for n in
                                                 range(MANY)))
        await storage.import_accounts(APP_1.sdkappid, [
            AccountWrite("alice", "Alice", "https://example.com/a.png"),
            AccountWrite("ζωή 🙂", "Zoë"), AccountWrite("gone")], max_accounts=None)
        await storage.kick(APP_1.sdkappid, "alice", 1_800_000_000)
        await storage.kick(APP_1.sdkappid, "gone", 1_800_000_100)
        await storage.delete_accounts(APP_1.sdkappid, ["gone"])
        for n in range(0, MANY, 1000):
            await storage.kick(APP_2.sdkappid, f"user_{n:06d}", 1_800_000_000 + n)
        spec = json.dumps({"Command": "account_check", "UserID": None, "Code": 70169,
                           "LatencyMs": 5, "Drop": False, "FailItems": False,
                           "ItemProbability": None, "Probability": 0.5, "Times": None,
                           "Seed": 42})
        rule = await storage.add_fault(APP_1.sdkappid, spec, None)
        await storage.hit_fault(rule.id)
        await storage.add_fault(APP_1.sdkappid, spec.replace('"Probability": 0.5',
                                '"Probability": null').replace('"Times": null', '"Times": 3'), 3)
        await storage.set_clock_offset(-12.5)
        await storage.set_app_clock_offset(APP_2.sdkappid, 3600)
    finally:
        await storage.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _import(path: Path, db: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli("import", str(path), db=db, check=check)


def test_sqlite_to_postgres_to_sqlite_exports_are_identical(tmp_path: Path, pg_server: str) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    asyncio.run(_fill(first))
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    out = cli("export", str(a), db=first).stdout
    assert f"Exported 2 apps, {MANY + 5:,} accounts, 15 kicks, 2 fault rules" in out
    assert _mode(a) == 0o600  # it holds the keys

    pg = fresh_postgres_database(pg_server)
    assert "Imported 2 apps" in _import(a, pg).stdout
    cli("export", str(b), db=pg)
    third = f"sqlite:///{tmp_path / 'third.db'}"
    _import(b, third)
    cli("export", str(c), db=third)
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()

    # and what was exported is what the file says, read back through the storage interface
    lines = [json.loads(line) for line in a.read_text().splitlines()]
    assert lines[0] == {"type": "timserver-export", "version": 1}
    assert lines[-1] == {"type": "end", "records": len(lines) - 2}
    app_1 = next(r for r in lines if r["type"] == "app" and r["sdkappid"] == APP_1.sdkappid)
    assert app_1["limits"] == {"account_check": 7, "kick": 0} and app_1["admins"] == ["boss", "ops"]
    assert {"type": "kick", "sdkappid": APP_1.sdkappid, "user_id": "gone",
            "kicked_at": 1_800_000_100} in lines
    faults = [r for r in lines if r["type"] == "fault"]
    assert [(f["matched"], f["remaining"]) for f in faults] == [(1, None), (0, 3)]

    async def read_back() -> tuple[int, App | None, float, dict[int, float]]:
        storage = make_storage(pg)
        await storage.open()
        try:
            return (await storage.count_accounts(APP_2.sdkappid),
                    await storage.get_app(APP_1.sdkappid), await storage.clock_offset(),
                    await storage.app_clock_offsets())
        finally:
            await storage.close()
    count, app, offset, offsets = asyncio.run(read_back())
    assert count == MANY and app is not None and app.key == KEY_1 and app.edition == "trial"
    assert offset == -12.5 and offsets == {APP_2.sdkappid: 3600.0}


def test_import_updates_an_existing_app_and_keeps_other_accounts(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 't.db'}"
    (tmp_path / "other.txt").write_text("other\n")
    (tmp_path / "mine.txt").write_text("mine\n")
    for args in (("app", "create", "--sdkappid", str(APP_1.sdkappid), "--key", KEY_1,
                  "--db", source),
                 ("app", "create", "--sdkappid", str(APP_1.sdkappid), "--key", KEY_2,
                  "--edition", "pro", "--db", target),
                 ("seed", str(tmp_path / "other.txt"), "--sdkappid", str(APP_1.sdkappid),
                  "--db", target),
                 ("seed", str(tmp_path / "mine.txt"), "--sdkappid", str(APP_1.sdkappid),
                  "--db", source),
                 ("export", str(tmp_path / "s.jsonl"), "--db", source),
                 ("import", str(tmp_path / "s.jsonl"), "--db", target)):
        assert in_process(*args).exit_code == 0
    shown = json.loads(in_process("app", "show", str(APP_1.sdkappid), "--json", "--db",
                                  target).output)
    # other, mine and the admin (an app's accounts include its admins)
    assert shown["key"] == KEY_1 and shown["edition"] == "developer" and shown["accounts"] == 3


def in_process(*args: str) -> Result:
    """The command line in this process (click's runner): the many cases below in seconds."""
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def valid_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A state file of one app with three accounts (and its admin)."""
    folder = tmp_path_factory.mktemp("valid")
    db = f"sqlite:///{folder / 'valid.db'}"
    assert in_process("app", "create", "--sdkappid", str(APP_1.sdkappid), "--key", KEY_1,
                      "--db", db).exit_code == 0
    (folder / "users.txt").write_text("a1\na2\na3\n")
    assert in_process("seed", str(folder / "users.txt"), "--sdkappid", str(APP_1.sdkappid),
                      "--db", db).exit_code == 0
    assert in_process("export", str(folder / "valid.jsonl"), "--db", db).exit_code == 0
    return (folder / "valid.jsonl").read_text().splitlines(keepends=True)


def _account(user_id: str) -> str:
    return json.dumps({"type": "account", "sdkappid": APP_1.sdkappid, "user_id": user_id,
                       "nick": None, "face_url": None, "admin": False, "created_at": 1.0}) + "\n"


@pytest.mark.parametrize("change,message", [
    (lambda lines: lines[:-1], "ends without its end record: it was cut short"),
    (lambda lines: lines[:4], "ends without its end record"),
    (lambda lines: [], "the file is empty"),
    (lambda lines: ['{"type":"timserver-export","version":2}\n', *lines[1:]],
     "version 2 was written by a newer timserver"),
    (lambda lines: lines[1:], "line 1: the first record must be the header"),
    (lambda lines: [*lines[:4], "{not json\n", *lines[4:]], "line 5: not JSON"),
    (lambda lines: [*lines[:4], _account("x" * 33), *lines[4:]], "line 5: UserID"),
    (lambda lines: [*lines[:4], lines[3], *lines[4:]],
     "line 5: account 'a1' of app 1400000701 comes after 'a1'"),
    (lambda lines: [*lines[:-1], '{"type":"end","records":99}\n'], "counts 99 records"),
    (lambda lines: [*lines, lines[3]], "a record after the end record"),
    (lambda lines: [*lines[:2], lines[1].replace('"trial"', '"gold"').replace(
        '"developer"', '"gold"'), *lines[2:]], "appears twice"),
    (lambda lines: [lines[0], lines[1].replace('"developer"', '"gold"'), *lines[2:]],
     "line 2: app 1400000701: edition must be one of"),
    (lambda lines: [*lines[:4], lines[3].replace('"type":"account"', '"type":"login"'),
                    *lines[4:]], "line 5: Invalid value 'login'"),
    (lambda lines: [*lines[:4], "x" * 100_000], "line 5: longer than 65536 bytes"),
])
def test_a_bad_file_is_one_error_line_and_changes_nothing(tmp_path: Path, valid_lines: list[str],
                                                          change, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(change(valid_lines)))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    done = in_process("import", str(bad), "--db", target)
    assert done.exit_code == 1
    errors = done.output.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"Error: cannot import {bad}: "), done.output
    assert message in errors[0], errors[0]
    assert KEY_1 not in done.output
    listed = in_process("app", "list", "--json", "--db", target)
    assert listed.exit_code == 0 and listed.output == ""  # nothing imported


def test_a_cut_short_file_through_the_real_command(tmp_path: Path, valid_lines: list[str]) -> None:
    bad = tmp_path / "cut.jsonl"
    bad.write_text("".join(valid_lines[:-1]))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    done = _import(bad, target, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"Error: cannot import {bad}: the file ends without its end "
                                   "record: it was cut short (an interrupted export or copy); "
                                   "nothing was imported")
    assert cli("app", "list", "--json", db=target).stdout == ""


def test_export_over_an_existing_file_makes_it_private(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert in_process("app", "create", "--db", db).exit_code == 0
    target = tmp_path / "state.jsonl"
    target.write_text("old")
    target.chmod(0o644)
    assert in_process("export", str(target), "--db", db).exit_code == 0
    assert _mode(target) == 0o600 and target.read_text().startswith('{"type":"timserver-export"')
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    missing = in_process("export", str(tmp_path / "no" / "such" / "f.jsonl"), "--db", db)
    assert missing.exit_code == 1 and "no folder" in missing.output


def _check(server: LiveServer, app: App, *user_ids: str) -> list[str]:
    answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check",
                        params=query(app), json={"CheckItem": [{"UserID": u} for u in user_ids]},
                        timeout=10).json()
    assert answer["ActionStatus"] == "OK", answer
    return [item["AccountStatus"] for item in answer["ResultItem"]]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_imports_before_listening_and_exports_on_exit(any_live_db: str, tmp_path: Path,
                                                            sig: signal.Signals) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    (tmp_path / "users.txt").write_text("seeded\n")
    for args in (("app", "create", "--sdkappid", str(APP_2.sdkappid), "--key", KEY_2),
                 ("seed", str(tmp_path / "users.txt"), "--sdkappid", str(APP_2.sdkappid)),
                 ("export", str(tmp_path / "in.jsonl"))):
        assert in_process(*args, "--db", source).exit_code == 0
    out = tmp_path / "out.jsonl"

    server = LiveServer(any_live_db, "--import", str(tmp_path / "in.jsonl"),
                        "--export-on-exit", str(out))
    try:
        assert _check(server, APP_2, "seeded", "later") == ["Imported", "NotImported"]
        made = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_import",
                          params=query(APP_2), json={"UserID": "later"}, timeout=10).json()
        assert made["ActionStatus"] == "OK"
        assert not out.exists()  # written at the end only
        server.proc.send_signal(sig)
        server.proc.wait(timeout=30)
    finally:
        if server.proc.poll() is None:
            server.kill()
    logs = server.output()
    assert "Imported 1 app, 2 accounts" in logs
    assert "Exported 1 app, 3 accounts, 0 kicks, 0 fault rules" in logs, logs
    assert server.proc.returncode != 0  # it still ends as that signal ends it
    assert _mode(out) == 0o600
    user_ids = [r["user_id"] for r in map(json.loads, out.read_text().splitlines())
                if r["type"] == "account"]
    assert user_ids == ["administrator", "later", "seeded"]


def test_serve_refuses_an_export_folder_it_cannot_write_before_starting(tmp_path: Path) -> None:
    done = cli("serve", "--port", "1", "--export-on-exit", str(tmp_path / "nope" / "x.jsonl"),
               db=f"sqlite:///{tmp_path / 'x.db'}", check=False)
    assert done.returncode == 2 and "--export-on-exit: cannot write into" in done.stderr


def test_check_state_counts_what_the_file_holds(tmp_path: Path, valid_lines: list[str]) -> None:
    path = tmp_path / "valid.jsonl"
    path.write_text("".join(valid_lines))
    with open(path, "rb") as f:
        counts = portable.check_state(f)
    assert (counts.apps, counts.accounts, counts.clocks) == (1, 4, 1)
    assert len(valid_lines) == counts.records + 2


def _peak_kib(*args: str) -> int:
    """VmHWM of a ``timserver`` command run in a process of its own (a fresh address space:
    unlike ru_maxrss, it does not carry the parent's peak across exec)."""
    code = ("import sys\nfrom timserver.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            "    print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))"
            ".split()[1], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_stays_flat_whatever_the_number_of_accounts(tmp_path: Path) -> None:
    """Exporting and importing 100,000 accounts peaks where 1,000 do (within 10 MB): holding
    them all would take far more (their records alone are 15 MB of JSON)."""
    async def load(db: str, n: int) -> None:
        storage = make_storage(db)
        await storage.open()
        try:
            await app_rules.create_app(storage, sdkappid=APP_2.sdkappid, key=KEY_2)
            await storage.bulk_load(APP_2.sdkappid, (AccountWrite(f"user_{i:08d}", f"Nick {i}")
                                                     for i in range(n)))
        finally:
            await storage.close()
    peaks = {}
    for n in (1_000, 100_000):
        source, target = f"sqlite:///{tmp_path / f's{n}.db'}", f"sqlite:///{tmp_path / f't{n}.db'}"
        asyncio.run(load(source, n))
        path = str(tmp_path / f"{n}.jsonl")
        peaks[n] = (_peak_kib("export", path, "--db", source),
                    _peak_kib("import", path, "--db", target))
    assert os.path.getsize(tmp_path / "100000.jsonl") > 14_000_000
    for small, big in zip(peaks[1_000], peaks[100_000], strict=True):
        assert big - small < 10_000, peaks
