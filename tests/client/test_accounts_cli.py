"""`timserver accounts import|check|delete FILE` and `kick USERID`, as processes, against a real
server: input formats, connection from flags or environment, summary, failures file, exit
status, and --resume after the CLI is killed half-way through an import."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from sdk_support import ImApp, kill_half_way

pytestmark = pytest.mark.slow


def write_csv(path: Path, ids: list[str], nick: bool = True) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["UserID", "Nick", "FaceUrl"])
        for i, u in enumerate(ids):
            w.writerow([u, f"Nick {i}" if nick else "", ""])
    return path


def statuses(im: ImApp, ids: list[str]) -> dict[str, str | None]:
    with im.client() as client:
        return {r.user_id: r.status for r in client.check_accounts(ids)}


def test_import_check_delete_a_csv(im: ImApp, tmp_path: Path) -> None:
    ids = [f"user_{i:04d}" for i in range(250)]
    bad = "b" * 33
    source = write_csv(tmp_path / "accounts.csv", [*ids[:120], bad, *ids[120:]])

    imported = im.accounts("import", str(source))
    assert imported.returncode == 1, imported.stderr  # one account failed
    assert "251 of 251 accounts done" in imported.stderr
    assert "succeeded: 250   failed: 1" in imported.stderr
    failed = list(csv.reader((tmp_path / "accounts.csv.import-failed.csv").open()))
    assert failed[0] == ["UserID", "ErrorCode", "ErrorInfo"]
    assert [row[:2] for row in failed[1:]] == [[bad, "70402"]]
    assert not (tmp_path / "accounts.csv.import-state").exists()  # complete: nothing to resume
    assert im.key not in imported.stdout + imported.stderr
    assert set(statuses(im, ids).values()) == {"Imported"}

    checked = im.accounts("check", str(source), "--output", str(tmp_path / "status.csv"))
    assert checked.returncode == 1  # the bad UserID cannot even be checked (70402)
    assert "Imported: 250   NotImported: 1" in checked.stderr
    rows = list(csv.reader((tmp_path / "status.csv").open()))
    assert rows[0] == ["UserID", "AccountStatus"] and len(rows) == 252
    assert {r[1] for r in rows[1:] if r[0] != bad} == {"Imported"}

    deleted = im.accounts("delete", str(source), "--missing-ok")
    assert deleted.returncode == 1  # still the bad UserID: 70402, not a missing account
    assert set(statuses(im, ids).values()) == {"NotImported"}


def test_ndjson_plain_lines_and_stdin(im: ImApp, tmp_path: Path) -> None:
    ndjson = tmp_path / "a.ndjson"
    ndjson.write_text("".join(json.dumps({"UserID": f"n{i}", "Nick": f"N{i}"}) + "\n"
                              for i in range(130)))
    assert im.accounts("import", str(ndjson)).returncode == 0
    lines = "".join(f"l{i}\n" for i in range(70))
    piped = im.accounts("import", "-", stdin=lines)
    assert piped.returncode == 0 and "70 of 70 accounts done" in piped.stderr
    listed = im.accounts("check", "-", "--output", "-", "--no-progress", stdin="n0\nl69\nnone\n")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["UserID,AccountStatus", "n0,Imported", "l69,Imported",
                                          "none,NotImported"]


def test_connection_from_flags(im: ImApp, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMSERVER_")}
    flags = ["--endpoint", im.endpoint, "--sdkappid", str(im.sdkappid), "--key", im.key,
             "--admin", im.admin]
    done = im.accounts("import", "-", *flags, stdin="f1\nf2\n", env=env)
    assert done.returncode == 0, done.stderr
    assert statuses(im, ["f1", "f2"]) == {"f1": "Imported", "f2": "Imported"}
    missing = im.accounts("import", "-", "--endpoint", im.endpoint, stdin="x\n", env=env)
    assert missing.returncode == 2 and "TIMSERVER_SDKAPPID" in missing.stderr


def test_kick(im: ImApp) -> None:
    assert im.accounts("import", "-", stdin="kicked\n").returncode == 0
    ok = im.accounts("kick", "kicked")
    assert ok.returncode == 0 and "Kicked kicked" in ok.stdout
    missing = im.accounts("kick", "nobody")
    assert missing.returncode == 1 and "70107" in missing.stderr


def test_delete_missing_ok(im: ImApp) -> None:
    strict = im.accounts("delete", "-", "--failed", os.devnull, stdin="absent\n")
    assert strict.returncode == 1 and "70107" in strict.stderr
    lenient = im.accounts("delete", "-", "--missing-ok", stdin="absent\n")
    assert lenient.returncode == 0 and "failed: 0" in lenient.stderr


def test_a_run_that_cannot_go_on_stops_and_keeps_its_state(im: ImApp, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", [f"s{i}" for i in range(300)])
    # A server error with no retry left (a wrong key stops before any state: test_cli_bulk.py)
    im.fault("--command", "multiaccount_import", "--code", "70500", "--times", "1")
    stopped = im.accounts("import", str(source), "--concurrency", "1", "--retries", "0")
    assert stopped.returncode == 3
    assert "70500" in stopped.stderr and "--resume" in stopped.stderr
    assert (tmp_path / "a.csv.import-state").exists()

    original = source.read_bytes()
    source.write_bytes(original + b"one_more\n")  # --resume refuses the state of another input
    changed = im.accounts("import", str(source), "--resume")
    assert changed.returncode == 2 and "another run" in changed.stderr

    source.write_bytes(original)
    resumed = im.accounts("import", str(source), "--resume")  # the right key this time
    assert resumed.returncode == 0 and "300 of 300 accounts done" in resumed.stderr
    assert not (tmp_path / "a.csv.import-state").exists()


def test_resume_after_the_import_is_killed(im: ImApp, tmp_path: Path) -> None:
    ids = [f"r{i:05d}" for i in range(6000)]  # 60 batches
    source = write_csv(tmp_path / "big.csv", ids)
    state = tmp_path / "big.csv.import-state"
    # Slowed to 20 calls/s so that the kill lands half-way (60 batches take 3 s).
    done = kill_half_way(im, ["import", str(source), "--no-progress", "--rate",
                              "multiaccount_import=20", "--concurrency", "2"], state)
    assert 15 <= len(done) < 60, "the import was not killed half-way"

    before = statuses(im, ids)
    done_ids = [u for b in done for u in ids[b * 100:(b + 1) * 100]]
    assert all(before[u] == "Imported" for u in done_ids)  # recorded only once imported
    # Delete what the finished batches imported: if --resume redid a batch, it would reappear.
    with im.client() as client:
        assert all(r.ok for r in client.delete_accounts(done_ids))

    resumed = im.accounts("import", str(source), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(done) * 100:,} by an earlier run)" in resumed.stderr
    assert "6,000 of 6,000 accounts done" in resumed.stderr
    after = statuses(im, ids)
    redone = [u for u in done_ids if after[u] == "Imported"]
    missing = [u for u in ids if u not in set(done_ids) and after[u] != "Imported"]
    assert redone == [] and missing == []
    assert not state.exists()
