"""Named snapshots on PostgreSQL (``timserver snapshot``), through the CLI, while a real server
serves the same database (skipped without PostgreSQL).

Each test gets a database of its own (``own_database``): snapshots live in schemas of the
database, which the shared test database's clean-up (public tables only) would not remove.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from emulator.test_emulator_postgres import own_database
from emulator.test_emulator_state import status

from timserver import usersig
from timserver.testing import TimServer, start_server

pytestmark = pytest.mark.slow

__all__ = ["own_database"]  # a fixture, imported for its use here


@pytest.fixture
def server(own_database: str, tmp_path: Path) -> Iterator[TimServer]:
    with start_server(db=own_database, folder=tmp_path, unlimited=True) as running:
        yield running


def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


def snapshot_schemas(url: str) -> list[str]:
    return [r["nspname"] for r in sql(
        url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'timserver\\_snapshot\\_%' "
             "ORDER BY nspname")]


def schema_of(saved: str) -> str:
    """The schema named by ``snapshot save``'s line."""
    found = re.search(r"\(schema (timserver_snapshot_\d+)\)", saved)
    assert found, saved
    return found.group(1)


def check_as(server: TimServer, sdkappid: int, key: str, sig: str | None = None) -> int:
    """The ErrorCode of an account_check made as ``sdkappid``'s admin, signed with ``key``."""
    sig = sig or usersig.generate(sdkappid, key, server.admin, 86400, now=int(time.time()))
    params = {"sdkappid": str(sdkappid), "identifier": server.admin, "usersig": sig,
              "random": str(random.randrange(2**32)), "contenttype": "json"}
    answer = httpx.post(f"{server.base_url}/v4/im_open_login_svc/account_check", params=params,
                        json={"CheckItem": [{"UserID": server.admin}]}, timeout=30).json()
    return answer["ErrorCode"]


def account_count(server: TimServer) -> int:
    return sql(server.db, "SELECT account_count FROM apps WHERE sdkappid = $1",
               server.sdkappid)[0]["account_count"]


# --- round trip -------------------------------------------------------------------------------


def test_save_list_restore_delete_round_trip(server: TimServer) -> None:
    server.call("multiaccount_import", {"Accounts": ["amy", "bob"]})
    saved = server.cli("snapshot", "save", "before").stdout
    assert saved.startswith("Saved snapshot 'before': 1 apps, 2 accounts (schema timserver_snapshot_")
    listed = server.cli("snapshot", "list").stdout.splitlines()
    assert len(listed) == 1 and listed[0].startswith("before  ") \
        and listed[0].endswith("bytes  1 apps, 2 accounts"), listed
    assert int(listed[0].split()[3]) > 0  # the size of the copies

    server.call("account_delete", {"DeleteItem": [{"UserID": "amy"}]})
    server.call("multiaccount_import", {"Accounts": ["cat", "dan"]})
    server.add_fault(command="kick", code=70500)
    assert status(server, "amy", "bob", "cat") == ["NotImported", "Imported", "Imported"]
    assert account_count(server) == 3

    restored = server.cli("snapshot", "restore", "before").stdout
    assert restored == "Restored snapshot 'before': 1 apps, 2 accounts.\n"
    assert status(server, "amy", "bob", "cat", "dan") == ["Imported", "Imported", "NotImported",
                                                          "NotImported"]
    assert account_count(server) == 2  # the app row comes back with its count, consistent
    assert len(server.faults()) == 1  # rules are controls, not data: they stay

    assert server.cli("snapshot", "delete", "before").stdout == "Deleted snapshot 'before'.\n"
    assert server.cli("snapshot", "list").stdout.startswith("No snapshots")
    assert snapshot_schemas(server.db) == []


# --- a running server sees the restore ------------------------------------------------------


def test_restore_reaches_the_running_servers_app_and_kick_caches(server: TimServer) -> None:
    gone = json.loads(server.cli("app", "create", "--json").stdout)  # deleted after the snapshot
    server.cli("snapshot", "save", "s")
    old_sig = server.usersig(now=int(time.time()) - 5)
    assert check_as(server, gone["sdkappid"], gone["key"]) == 0

    # Kick the admin: the server caches the kick time while it refuses the old UserSig.
    assert server.call("kick", {"UserID": server.admin})["ErrorCode"] == 0
    assert server.call("account_check", {"CheckItem": [{"UserID": "a"}]},
                       usersig=old_sig)["ErrorCode"] == 70005
    # Re-key the app, delete another (as an app change does: bump + NOTIFY), add a third.
    server.cli("app", "rotate-key", str(server.sdkappid))
    assert check_as(server, server.sdkappid, server.key, old_sig) == 70009
    sql(server.db, "WITH d AS (DELETE FROM apps WHERE sdkappid = $1 RETURNING 1), "
                   "v AS (UPDATE meta SET value = value + 1 WHERE name = 'apps_version' RETURNING 1) "
                   "SELECT pg_notify('timserver_apps', '') FROM d, v", gone["sdkappid"])
    assert check_as(server, gone["sdkappid"], gone["key"]) == 60006
    new = json.loads(server.cli("app", "create", "--json").stdout)
    assert check_as(server, new["sdkappid"], new["key"]) == 0  # cached by the server

    server.cli("snapshot", "restore", "s")
    # The snapshot's key again, and no kick: the cached kick time was dropped.
    assert check_as(server, server.sdkappid, server.key, old_sig) == 0
    assert check_as(server, gone["sdkappid"], gone["key"]) == 0  # back, with its key
    assert check_as(server, new["sdkappid"], new["key"]) == 60006  # not in the snapshot


def test_kicks_in_a_snapshot_come_back(server: TimServer) -> None:
    old_sig = server.usersig(now=int(time.time()) - 5)
    assert server.call("kick", {"UserID": server.admin})["ErrorCode"] == 0
    server.cli("snapshot", "save", "kicked")
    server.reset(kicks=True)  # forgets the kick (an admin's survives a plain reset)
    assert check_as(server, server.sdkappid, server.key, old_sig) == 0  # cached: not kicked
    server.cli("snapshot", "restore", "kicked")
    assert check_as(server, server.sdkappid, server.key, old_sig) == 70005


def test_restore_while_the_server_serves(server: TimServer) -> None:
    """Readers see one snapshot or the other, never a mix; writers wait and succeed."""
    first = [f"x{i}" for i in range(40)]
    second = [f"y{i}" for i in range(40)]
    server.call("multiaccount_import", {"Accounts": first})
    server.cli("snapshot", "save", "first")
    server.reset()
    server.call("multiaccount_import", {"Accounts": second})
    server.cli("snapshot", "save", "second")
    expected = {"first": ["Imported"] * 40 + ["NotImported"] * 40,
                "second": ["NotImported"] * 40 + ["Imported"] * 40}

    stop = threading.Event()
    problems: list[Any] = []
    seen: set[str] = set()

    def read() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(server.url("account_check"), json={
                    "CheckItem": [{"UserID": u} for u in first + second]}).json()
                got = [item["AccountStatus"] for item in answer.get("ResultItem", [])]
                which = [name for name, want in expected.items() if got == want]
                if answer["ErrorCode"] != 0 or not which:
                    problems.append(answer)
                else:
                    seen.add(which[0])

    def write() -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not stop.is_set():
                n += 1
                for command, body in [
                        ("multiaccount_import", {"Accounts": [f"z{n}", f"w{n}"]}),
                        ("account_delete", {"DeleteItem": [{"UserID": f"w{n}"}]}),
                        ("kick", {"UserID": f"z{n}"})]:
                    answer = client.post(server.url(command), json=body).json()
                    # A kick may find its account gone by a restore in between (70107).
                    if answer["ErrorCode"] != 0 and not (command == "kick"
                                                         and answer["ErrorCode"] == 70107):
                        problems.append((command, answer))

    threads = [threading.Thread(target=read), threading.Thread(target=read),
               threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(4):
            server.cli("snapshot", "restore", "second" if round_ % 2 else "first")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert problems == []
    assert seen == {"first", "second"}
    assert status(server, *first[:1], *second[:1]) == ["NotImported", "Imported"]
    counted = sql(server.db, "SELECT count(*) AS n FROM accounts WHERE sdkappid = $1 "
                             "AND NOT is_admin", server.sdkappid)[0]["n"]
    assert account_count(server) == counted  # writes after the restore kept the count exact


def waiting(url: str, like: str) -> list[str]:
    """Queries of the database's sessions that wait for a lock, matching ``like``."""
    return [r["query"] for r in sql(
        url, "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
             "AND wait_event_type = 'Lock' AND query LIKE $1", like)]


def until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_write_during_a_restore_waits_for_it_and_reads_go_on(server: TimServer) -> None:
    """A restore paused inside its transaction (the test holds the row it bumps last): the
    server's reads see the old data meanwhile, its write waits and then applies to the restored
    data, with the app's account count exact."""
    server.call("multiaccount_import", {"Accounts": ["a1", "a2"]})
    server.cli("snapshot", "save", "s")
    server.call("account_import", {"UserID": "b1"})

    held, release = threading.Event(), threading.Event()

    def hold_meta() -> None:
        async def run() -> None:
            conn = await asyncpg.connect(server.db, timeout=5)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT 1 FROM meta WHERE name = 'apps_version' FOR UPDATE")
                    held.set()
                    await asyncio.to_thread(release.wait, 60)
            finally:
                await conn.close()
        asyncio.run(run())

    holder = threading.Thread(target=hold_meta)
    holder.start()
    answers: list[dict[str, Any]] = []
    writer = threading.Thread(target=lambda: answers.append(
        server.call("account_import", {"UserID": "late"})))
    try:
        assert held.wait(10)
        restore = subprocess.Popen([sys.executable, "-m", "timserver", "snapshot", "restore", "s",
                                    "--db", server.db], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        until(lambda: waiting(server.db, "UPDATE meta%"), "the restore to reach apps_version")
        assert status(server, "a1", "b1") == ["Imported", "Imported"]  # the old data, at once
        writer.start()
        until(lambda: [q for q in waiting(server.db, "%") if "meta" not in q],
              "the server's write to wait")
        assert answers == []
    finally:
        release.set()
        holder.join(30)
    out, err = restore.communicate(timeout=60)
    assert restore.returncode == 0 and out.startswith("Restored snapshot 's'"), err
    writer.join(30)
    assert answers and answers[0]["ErrorCode"] == 0, answers
    assert status(server, "a1", "a2", "b1", "late") == ["Imported", "Imported", "NotImported",
                                                        "Imported"]
    assert account_count(server) == 3  # the write counted on the restored app row


def test_a_restore_does_not_deadlock_with_a_write_taking_locks_in_another_order(
        server: TimServer) -> None:
    """A transaction that writes accounts, then apps (as account_delete does), while a restore
    waits for its locks: neither is aborted."""
    server.cli("snapshot", "save", "s")

    async def run() -> tuple[int, str]:
        conn = await asyncpg.connect(server.db, timeout=5)
        watcher = await asyncpg.connect(server.db, timeout=5)  # outside the transaction
        try:
            async with conn.transaction():
                await conn.execute("UPDATE accounts SET nick = 'n' WHERE sdkappid = $1",
                                   server.sdkappid)
                restore = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "timserver", "snapshot", "restore", "s", "--db",
                    server.db, stderr=asyncio.subprocess.PIPE)
                deadline = time.monotonic() + 30
                while not await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'LOCK TABLE%'"):
                    assert time.monotonic() < deadline, "the restore never waited for its locks"
                    await asyncio.sleep(0.01)
                await conn.execute("UPDATE apps SET account_count = account_count "
                                   "WHERE sdkappid = $1", server.sdkappid)
            _, err = await asyncio.wait_for(restore.communicate(), 60)
            return restore.returncode or 0, err.decode()
        finally:
            await conn.close()
            await watcher.close()
    code, err = asyncio.run(run())
    assert code == 0, err


# --- snapshots of an older schema -----------------------------------------------------------


def test_columns_are_matched_by_name(server: TimServer) -> None:
    server.cli("app", "set-limit", str(server.sdkappid), "account_check", "7")
    schema = schema_of(server.cli("snapshot", "save", "old").stdout)
    # As if taken before a migration that added apps.limits (it has a default) ...
    sql(server.db, f"ALTER TABLE {schema}.apps DROP COLUMN limits")
    # ... and with its columns in another order.
    sql(server.db, f"ALTER TABLE {schema}.kicks RENAME TO kicks_old")
    sql(server.db, f"CREATE TABLE {schema}.kicks AS SELECT kicked_at, user_id, sdkappid "
                   f"FROM {schema}.kicks_old")
    server.call("account_import", {"UserID": "later"})
    assert server.cli("snapshot", "restore", "old").stdout.startswith("Restored snapshot 'old'")
    assert status(server, "later") == ["NotImported"]
    limits = sql(server.db, "SELECT limits FROM apps WHERE sdkappid = $1", server.sdkappid)
    assert limits[0]["limits"] == "{}"  # the column's default


def test_a_snapshot_missing_a_table_is_refused_and_nothing_changes(server: TimServer) -> None:
    schema = schema_of(server.cli("snapshot", "save", "broken").stdout)
    sql(server.db, f"DROP TABLE {schema}.kicks")
    server.call("account_import", {"UserID": "kept"})
    done = server.cli("snapshot", "restore", "broken", check=False)
    assert done.returncode != 0 and "has no kicks table" in done.stderr, done.stderr
    assert status(server, "kept") == ["Imported"]


# --- errors -----------------------------------------------------------------------------------


def test_snapshot_errors(server: TimServer) -> None:
    server.cli("snapshot", "save", "dup")
    again = server.cli("snapshot", "save", "dup", check=False)
    assert again.returncode != 0 and "exists already" in again.stderr \
        and "--force" in again.stderr, again.stderr
    server.call("account_import", {"UserID": "newer"})
    server.cli("snapshot", "save", "dup", "--force")  # replaces it, in one transaction
    assert len(snapshot_schemas(server.db)) == 1
    server.reset()
    server.cli("snapshot", "restore", "dup")
    assert status(server, "newer") == ["Imported"]  # the replacement's content
    for args, says in [(["save", "../escape"], "bad snapshot name"),
                       (["save", ".hidden"], "bad snapshot name"),
                       (["save", 'quo"te'], "bad snapshot name"),
                       (["save", "x" * 65], "bad snapshot name"),
                       (["restore", "never-saved"], "no snapshot 'never-saved'"),
                       (["delete", "never-saved"], "no snapshot 'never-saved'")]:
        done = server.cli("snapshot", *args, check=False)
        assert done.returncode != 0 and says in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert server.cli("snapshot", "save", "y" * 64).returncode == 0  # the longest name
    assert len(snapshot_schemas(server.db)) == 2


def test_unreachable_postgres_is_a_clear_error() -> None:
    for args in (["save", "x"], ["restore", "x"], ["list"], ["delete", "x"]):
        done = subprocess.run([sys.executable, "-m", "timserver", "snapshot", *args, "--db",
                               "postgresql://nobody@127.0.0.1:1/none"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "PostgreSQL" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
