"""``timserver accounts load FILE --db URL --sdkappid N``: accounts straight into the database
(``Storage.bulk_load``: batched transactions on SQLite, COPY on PostgreSQL), on both backends."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import msgspec
import pytest
from support import cli

from timserver.cli.load import InputError, read_rows
from timserver.storage import AccountWrite, make_storage

pytestmark = pytest.mark.slow

SDKAPPID = 1400000077


async def accounts_of(db: str, ids: list[str]) -> dict[str, tuple[str | None, str | None, bool]]:
    storage = make_storage(db)
    await storage.open()
    try:
        found = {}
        for account in await storage.list_accounts(SDKAPPID, limit=100_000):
            if account.user_id in ids:
                found[account.user_id] = (account.nick, account.face_url, account.is_admin)
        return found
    finally:
        await storage.close()


async def count(db: str) -> int:
    storage = make_storage(db)
    await storage.open()
    try:
        return await storage.count_accounts(SDKAPPID)
    finally:
        await storage.close()


def load(db: str, path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli("accounts", "load", str(path), "--sdkappid", str(SDKAPPID), "--no-progress",
               *args, db=db, check=check)


@pytest.fixture
def app_db(db_url: str) -> str:
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--admin", "boss", db=db_url)
    return db_url


async def test_one_userid_a_line_in_several_batches_then_again(app_db: str, tmp_path: Path) -> None:
    ids = [f"user_{i:05d}" for i in range(250)]
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids[:100]) + "\n\n" + "\n".join(ids[100:]) + "\n")

    first = load(app_db, source, "--batch-size", "7")
    assert "250 accounts" in first.stderr and "250 new, 0 already there" in first.stderr
    assert await count(app_db) == 250
    assert set(await accounts_of(app_db, ids)) == set(ids)

    again = load(app_db, source)  # idempotent: nothing new, the count unchanged
    assert "0 new, 250 already there" in again.stderr
    assert await count(app_db) == 250


async def test_csv_profiles_updates_duplicates_and_rejected_rows(app_db: str,
                                                                 tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("UserID,Nick,FaceUrl\nann,Ann,http://a/1\nbob,Bob,\n")
    assert load(app_db, first).returncode == 0

    second = tmp_path / "second.csv"
    second.write_text(
        "UserID,Nick,FaceUrl\n"
        "ann,,http://a/2\n"            # FaceUrl replaced, Nick kept
        '"carl, jr","Carl\nthe second",\n'  # quoted comma and newline
        f"{'x' * 33},Too long,\n"      # not a valid UserID: skipped, reported
        "dan,D1,\n"
        "dan,,http://d\n"              # a later row of the same UserID adds to it
        "boss,The Boss,\n")            # an admin stays an admin
    run = load(app_db, second, check=False)
    assert run.returncode == 1, run.stderr
    assert "skipped 1 rows" in run.stderr and "line 5" in run.stderr
    failed = (tmp_path / "second.csv.load-failed.csv").read_text().splitlines()
    assert failed[0] == "Line,UserID,Reason" and failed[1].startswith(f"5,{'x' * 33},")

    found = await accounts_of(app_db, ["ann", "bob", "carl, jr", "dan", "boss"])
    assert found == {"ann": ("Ann", "http://a/2", False), "bob": ("Bob", None, False),
                     "carl, jr": ("Carl\nthe second", None, False),
                     "dan": ("D1", "http://d", False), "boss": ("The Boss", None, True)}
    assert await count(app_db) == 4  # ann, bob, carl, dan; admins take no place


async def test_ndjson(app_db: str, tmp_path: Path) -> None:
    source = tmp_path / "accounts.ndjson"
    source.write_text("\n".join(json.dumps(a) for a in [
        {"UserID": "eve", "Nick": "Eve"}, {"UserID": "fay", "FaceUrl": "http://f", "x": 1}]))
    assert load(app_db, source).returncode == 0
    assert await accounts_of(app_db, ["eve", "fay"]) == {"eve": ("Eve", None, False),
                                                         "fay": (None, "http://f", False)}


def test_refuses_unknown_and_trial_apps(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("someone\n")
    unknown = load(db_url, source, check=False)
    assert unknown.returncode != 0 and f"no app with SDKAppID {SDKAPPID}" in unknown.stderr
    cli("app", "create", "--sdkappid", str(SDKAPPID), "--edition", "trial", db=db_url)
    trial = load(db_url, source, check=False)
    assert trial.returncode != 0 and "trial app" in trial.stderr


async def test_bulk_load_counts_rows_and_creations(db_url: str) -> None:
    storage = make_storage(db_url)
    await storage.open()
    try:
        from timserver.service import apps as app_rules

        await app_rules.create_app(storage, sdkappid=SDKAPPID)
        seen: list[int] = []
        rows = (AccountWrite(f"u{i % 30}") for i in range(45))  # 15 repeats
        created = await storage.bulk_load(SDKAPPID, rows, batch_size=10, progress=seen.append)
        assert created == 30 and seen == [10, 10, 10, 10, 5]
        assert await storage.count_accounts(SDKAPPID) == 30
        assert len(await storage.existing(SDKAPPID, [f"u{i}" for i in range(40)])) == 30
    finally:
        await storage.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("a\nb\n\n c \n", [(1, {"UserID": "a"}), (2, {"UserID": "b"}), (4, {"UserID": " c "})]),
    ("UserID,Nick,FaceUrl\r\na,Ann,\r\nb,,http://b\r\n",
     [(2, {"UserID": "a", "Nick": "Ann"}), (3, {"UserID": "b", "FaceUrl": "http://b"})]),
    ('UserID,Nick\n"q,1","N\nM"\n\nr,\n', [(3, {"UserID": "q,1", "Nick": "N\nM"}),
                                             (5, {"UserID": "r"})]),
    ("FaceUrl,UserID\nhttp://x,z\n", [(1, {"UserID": "FaceUrl,UserID"}),
                                      (2, {"UserID": "http://x,z"})]),
    ('\ufeff{"UserID":"a","Nick":"A"}\n\n{"UserID":"b"}\n',
     [(1, {"UserID": "a", "Nick": "A"}), (3, {"UserID": "b"})]),
])
def test_the_stream_reader_gives_each_account_with_its_line(
        text: str, expected: list[tuple[int, dict[str, str]]]) -> None:
    got = [(line, msgspec.to_builtins(item)) for line, item in read_rows(io.BytesIO(text.encode()))]
    assert got == expected


def test_the_stream_reader_names_the_bad_line() -> None:
    with pytest.raises(InputError, match="line 3"):
        list(read_rows(io.BytesIO(b'{"UserID":"a"}\n\n{"UserID":1}\n')))
    with pytest.raises(InputError, match="line 2: no UserID"):
        list(read_rows(io.BytesIO(b"UserID,Nick\n,Nobody\n")))
