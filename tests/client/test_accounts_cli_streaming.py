"""`timserver accounts` reads its input as a stream and `check` resumes like import and delete:

* `check --resume` after a SIGKILL half-way: finished batches are not checked again, and the
  output file and the summary cover every account, the ones of the killed run included;
* the memory of a run over 200,000 lines stays a small fraction of what loading the file took
  (tracemalloc, in-process, the answers from a mock transport; no timing);
* the SDK's bulk helpers consume an iterator a few batches ahead, no more;
* bad lines: in a file, refused before anything is sent; on stdin, found on the way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from click.testing import CliRunner
from sdk_support import ImApp, kill_half_way

from timserver.cli import accounts as cli_accounts
from timserver.cli.accounts import accounts as accounts_cli
from timserver.client import AsyncClient, iter_accounts, parse_accounts

pytestmark = pytest.mark.slow


def statuses(im: ImApp, ids: list[str]) -> dict[str, str | None]:
    with im.client() as client:
        return {r.user_id: r.status for r in client.check_accounts(ids)}


def test_check_resumes_after_a_kill_and_reports_every_account(im: ImApp, tmp_path: Path) -> None:
    ids = [f"c{i:05d}" for i in range(6000)]  # 60 batches
    with im.client() as client:
        assert all(r.ok for r in client.import_accounts(ids[::2]))  # even: Imported
    original = {u: "Imported" if i % 2 == 0 else "NotImported" for i, u in enumerate(ids)}
    source = tmp_path / "ids.txt"
    source.write_text("".join(u + "\n" for u in ids))
    output = tmp_path / "status.csv"
    state = tmp_path / "ids.txt.check-state"
    # Slowed to 20 calls/s so that the kill lands half-way (60 batches take 3 s).
    done = kill_half_way(im, ["check", str(source), "--no-progress", "--output", str(output),
                              "--rate", "account_check=20", "--concurrency", "2"], state)
    assert 15 <= len(done) < 60, "the check was not killed half-way"

    # Flip, on the server, every account of the finished batches: a batch checked again would
    # report the flipped status; one taken from the earlier run reports the original.
    done_ids = [u for b in done for u in ids[b * 100:(b + 1) * 100]]
    with im.client() as client:
        assert all(r.ok for r in client.delete_accounts([u for u in done_ids
                                                         if original[u] == "Imported"]))
        assert all(r.ok for r in client.import_accounts([u for u in done_ids
                                                         if original[u] == "NotImported"]))

    # The output must go on in the same file; stdout cannot hold the earlier rows.
    elsewhere = im.accounts("check", str(source), "--resume", "--output", "-")
    assert elsewhere.returncode == 2 and "another run" in elsewhere.stderr

    resumed = im.accounts("check", str(source), "--resume", "--no-progress",
                          "--output", str(output))
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(done) * 100:,} by an earlier run)" in resumed.stderr
    assert "6,000 of 6,000 accounts done" in resumed.stderr
    assert "Imported: 3,000   NotImported: 3,000" in resumed.stderr  # both runs counted
    rows = list(csv.reader(output.open(newline="")))
    assert rows[0] == ["UserID", "AccountStatus"]
    assert sorted(r[0] for r in rows[1:]) == ids  # every account once: none lost, none twice
    assert {r[0]: r[1] for r in rows[1:]} == original  # no finished batch was checked again
    assert not state.exists()


def test_check_resume_refuses_stdout_output_when_batches_are_done(im: ImApp,
                                                                  tmp_path: Path) -> None:
    source = tmp_path / "few.txt"
    source.write_text("".join(f"s{i}\n" for i in range(250)))
    state = tmp_path / "few.state"
    # A server error on the first batch, no retry left: the run stops at once
    im.fault("--command", "account_check", "--userid", "s0", "--code", "70500", "--times", "1")
    stopped = im.accounts("check", str(source), "--state", str(state), "--output", "-",
                          "--retries", "0", "--concurrency", "1")
    assert stopped.returncode == 3 and state.exists()
    # Record one finished batch as an earlier run would have, then ask to resume to stdout.
    with state.open("a") as f:
        f.write(json.dumps({"batch": 0, "ok": 100, "failed": [], "status": {}}) + "\n")
    refused = im.accounts("check", str(source), "--state", str(state), "--resume", "--output", "-")
    assert refused.returncode == 2 and "--output PATH" in refused.stderr
    resumed = im.accounts("check", str(source), "--state", str(state), "--resume")
    assert resumed.returncode == 2 and "another run" in resumed.stderr  # the output is part of it


def test_a_bad_line_in_a_file_is_refused_before_anything_is_sent(im: ImApp,
                                                                 tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("UserID,Nick\n" + "".join(f"b{i},n\n" for i in range(300)) + ",nobody\n")
    refused = im.accounts("import", str(source))
    assert refused.returncode == 2 and f"{source}:302: no UserID" in refused.stderr
    assert set(statuses(im, ["b0", "b299"]).values()) == {"NotImported"}


def test_a_bad_line_on_stdin_stops_the_run_where_it_is(im: ImApp) -> None:
    lines = "".join(json.dumps({"UserID": f"p{i}"}) + "\n" for i in range(250))
    run = im.accounts("import", "-", "--batch-size", "50", "--concurrency", "1",
                      stdin=lines + '{"UserID": 7}\n')
    assert run.returncode == 2 and "line 251" in run.stderr
    assert "250 accounts done" in run.stderr  # the batches before the bad line were imported
    assert set(statuses(im, ["p0", "p249"]).values()) == {"Imported"}


# --- memory ------------------------------------------------------------------------------------


def test_the_sdk_reads_an_iterator_a_few_batches_ahead(im: ImApp) -> None:
    taken = 0
    ahead: list[int] = []

    def ids() -> Iterator[str]:
        nonlocal taken
        for n in range(2000):
            taken += 1
            yield f"ahead{n}"

    with im.client(concurrency=2) as client:
        kept = client.check_accounts(ids(), collect=False,
                                     on_batch=lambda index, results: ahead.append(taken))
    assert kept == [] and len(ahead) == 20 and taken == 2000
    # When a batch finishes, the input was read at most a batch per thread beyond it.
    assert max(a - 100 * (i + 1) for i, a in enumerate(ahead)) <= 2 * 100


def instant_check(request: httpx.Request) -> httpx.Response:
    """account_check answered at once, in the process: the memory test measures the CLI, and a
    real server would take most of a minute for 2,000 calls under tracemalloc."""
    items = msgspec.json.decode(request.content)["CheckItem"]
    return httpx.Response(200, content=msgspec.json.encode({
        "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "ResultItem": [
            {"UserID": i["UserID"], "ResultCode": 0, "ResultInfo": "",
             "AccountStatus": "NotImported"} for i in items]}))


def run_in_process(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(accounts_cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr if hasattr(result, "stderr") else result.output


def test_memory_stays_bounded_for_a_large_file(im: ImApp, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines = 200_000
    source = tmp_path / "large.csv"
    with source.open("w") as f:
        f.write("UserID,Nick,FaceUrl\n")
        f.writelines(f"large_user_{n:07d},Nick number {n},\n" for n in range(lines))
    small = tmp_path / "small.txt"
    small.write_text("x\ny\n")
    for name, value in im.env().items():
        monkeypatch.setenv(name, value)

    def make_client(conn: dict[str, Any]) -> AsyncClient:
        return AsyncClient(conn["sdkappid"], conn["key"], conn["admin"], conn["endpoint"],
                           rates=conn["rates"], concurrency=conn["concurrency"],
                           transport=httpx.MockTransport(instant_check))
    monkeypatch.setattr(cli_accounts, "make_client", make_client)
    args = ["--no-progress", "--rate", "account_check=0", "--failed", os.devnull]

    code, said = run_in_process("check", str(small), *args)  # imports, caches: warm
    assert code == 0 and "2 of 2 accounts done" in said, said

    tracemalloc.start()
    try:
        code, said = run_in_process("check", str(source), *args)
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        whole = parse_accounts(source.read_bytes())  # what the CLI held before it streamed
        user_ids = [a.UserID for a in whole]
        _, loaded = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0, said
    assert f"{lines:,} of {lines:,} accounts done" in said
    assert "NotImported: 200,000" in said
    assert len(user_ids) == lines
    assert streamed * 10 < loaded  # about 1.8 MB against 74 MB here, (streamed, loaded)


def test_the_reader_on_tricky_inputs() -> None:
    """One reader for files, stdin and whole inputs: these are its answers."""
    cases = {
        "a\nb\n\n c \n": [{"UserID": "a"}, {"UserID": "b"}, {"UserID": " c "}],
        "UserID,Nick,FaceUrl\r\na,Ann,\r\nb,,http://b\r\n":
            [{"UserID": "a", "Nick": "Ann"}, {"UserID": "b", "FaceUrl": "http://b"}],
        'UserID,Nick\n"q,1","N\nM"\n\nr,\n': [{"UserID": "q,1", "Nick": "N\nM"}, {"UserID": "r"}],
        "FaceUrl,UserID\nhttp://x,z\n": [{"UserID": "FaceUrl,UserID"}, {"UserID": "http://x,z"}],
        '\ufeff{"UserID":"a","Nick":"A"}\n\n{"UserID":"b"}\n':
            [{"UserID": "a", "Nick": "A"}, {"UserID": "b"}],
        "user 1\r\n\r\nuser_2": [{"UserID": "user 1"}, {"UserID": "user_2"}],
        'UserID,Nick\na,"He said ""hi"""\nb,x"y\n':
            [{"UserID": "a", "Nick": 'He said "hi"'}, {"UserID": "b", "Nick": 'x"y'}],
        "": [],
        "UserID\n": [],
    }
    for text, expected in cases.items():
        streamed = [msgspec.to_builtins(a) for a in iter_accounts(io.BytesIO(text.encode()))]
        assert streamed == expected, text
        assert [msgspec.to_builtins(a) for a in parse_accounts(text)] == expected, text
