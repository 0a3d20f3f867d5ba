"""``timserver.client.jobs``: bulk jobs that resume after an interruption, from Python, against a
live server: finished batches are not sent again, a changed input or another job's state file is
refused before anything is sent, each batch's fingerprint is recorded, the CLI resumes a job that
Python started (one state-file format)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdk_support import ImApp, finished_batches

from timserver.client import NO_RETRY, AccountResult, ApiError, jobs
from timserver.client.jobs import InputChanged, JobState, StateMismatch, batch_digest

pytestmark = pytest.mark.slow


def ids_of(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def statuses(im: ImApp, ids: list[str]) -> dict[str, str | None]:
    with im.client() as client:
        return {r.user_id: r.status for r in client.check_accounts(ids)}


def stop_at_batch(im: ImApp, ids: list[str], batch: int, command: str = "multiaccount_import"
                  ) -> None:
    """The next call naming the first UserID of ``batch`` is answered 70500 (a run with no retry
    left stops there)."""
    im.fault("--command", command, "--userid", ids[batch * 100], "--code", "70500",
             "--times", "1")


def entries(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in state.read_text().splitlines()[1:]]


def test_resume_after_an_interruption_skips_the_finished_batches(im: ImApp,
                                                                 tmp_path: Path) -> None:
    ids = ids_of("jr", 600)
    state = tmp_path / "jr.state"
    stop_at_batch(im, ids, 3)
    with im.client(retry=NO_RETRY) as client, pytest.raises(ApiError) as stopped:
        jobs.run(client, "import", ids, state=state, concurrency=1)
    assert stopped.value.code == 70500
    assert finished_batches(state) == {0, 1, 2}  # kept: the job is not complete
    header = json.loads(state.read_text().splitlines()[0])
    assert header == {"format": "timserver-accounts-state", "command": "import",
                      "batch_size": 100, "accounts": 600, "input_sha256": None}
    assert (state.stat().st_mode & 0o777) == 0o600  # it names accounts

    # Delete what the finished batches imported: if the resumed job redid one, it would reappear.
    with im.client() as client:
        assert all(r.ok for r in client.delete_accounts(ids[:300]))
    seen: list[int] = []
    with im.client() as client:
        result = jobs.run(client, "import", ids, state=state, resume=True,
                          on_batch=lambda index, results: seen.append(index))
        assert client.stats.requests == 3  # batches 3, 4, 5 only
    assert sorted(seen) == [3, 4, 5]
    assert (result.accounts, result.earlier, result.succeeded, result.failed) == (600, 300, 600, [])
    assert [r.user_id for r in result.results] == ids[300:]  # this run's, in input order
    after = statuses(im, ids)
    assert [u for u in ids[:300] if after[u] == "Imported"] == []  # none sent again
    assert [u for u in ids[300:] if after[u] != "Imported"] == []
    assert not state.exists()  # complete: nothing left to resume


def test_a_changed_input_is_refused_and_the_state_kept(im: ImApp, tmp_path: Path) -> None:
    ids = ids_of("jc", 400)
    state = tmp_path / "jc.state"
    stop_at_batch(im, ids, 2)
    with im.client(retry=NO_RETRY) as client, pytest.raises(ApiError):
        jobs.run(client, "import", ids, state=state, concurrency=1)
    recorded = state.read_bytes()
    assert finished_batches(state) == {0, 1}

    changed = [*ids[:150], "intruder", *ids[151:]]  # batch 1 holds another UserID
    with im.client() as client:
        with pytest.raises(InputChanged, match=r"batch 1"):  # a list: before anything is sent
            jobs.run(client, "import", changed, state=state, resume=True)
        with pytest.raises(StateMismatch, match="another run"):  # 399 accounts, not 400
            jobs.run(client, "import", ids[:-1], state=state, resume=True)
        with pytest.raises(StateMismatch):  # another command
            jobs.run(client, "check", ids, state=state, resume=True)
        with pytest.raises(StateMismatch):  # another batch size
            jobs.run(client, "import", ids, state=state, resume=True, batch_size=50)
        assert client.stats.requests == 0
    assert state.read_bytes() == recorded  # untouched by the refused runs
    assert statuses(im, ["intruder"]) == {"intruder": "NotImported"}

    # A generator is read as its batches are sent: batch 0 (finished earlier) is skipped,
    # batch 1 is refused when it is read, nothing is sent.
    def streamed() -> Iterator[str]:
        yield from changed

    gen_state = tmp_path / "gen.state"
    stop_at_batch(im, ids, 2)
    with im.client(retry=NO_RETRY) as client, pytest.raises(ApiError):
        jobs.run(client, "import", iter(ids), state=gen_state, concurrency=1)
    assert finished_batches(gen_state) == {0, 1}
    with im.client() as client:
        with pytest.raises(InputChanged, match=r"batch 1"):
            jobs.run(client, "import", streamed(), state=gen_state, resume=True)
        assert client.stats.requests == 0  # batch 0 skipped, batch 1 refused when read
    assert finished_batches(gen_state) == {0, 1}


def test_each_finished_batch_records_its_fingerprint(im: ImApp, tmp_path: Path) -> None:
    ids = ids_of("jd", 250)
    state = tmp_path / "jd.state"
    stop_at_batch(im, ids, 2, "account_check")
    with im.client(retry=NO_RETRY) as client, pytest.raises(ApiError):
        jobs.run(client, "check", ids, state=state, concurrency=1)
    lines = entries(state)
    assert [e["batch"] for e in lines] == [0, 1]
    for e in lines:
        index = int(e["batch"])  # type: ignore[call-overload]
        batch = ids[index * 100:(index + 1) * 100]
        assert e["ids"] == batch_digest(batch)
        assert e["status"] == {"NotImported": 100} and e["ok"] == 100 and e["failed"] == []
    # The fingerprint tells a batch from the same UserIDs in another order, or one fewer.
    first = ids[:100]
    assert batch_digest(first) != batch_digest(first[::-1])
    assert batch_digest(first) != batch_digest(first[:-1])
    assert len(batch_digest(first)) == 16 and batch_digest(first) == batch_digest(list(first))


async def test_async_job_cancelled_then_resumed_with_an_output_position(im: ImApp,
                                                                        tmp_path: Path) -> None:
    """``arun``, stopped by cancellation half-way; ``on_batch`` writes an output and returns its
    position, which the state gives back (``output_end``) so the output can be cut back."""
    ids = ids_of("ja", 1000)
    with im.client() as client:
        assert all(r.ok for r in client.import_accounts(ids[::2]))
    state_path = tmp_path / "ja.state"
    output = tmp_path / "ja.csv"

    def writer(f: object) -> jobs.OnJobBatch:
        def on_batch(index: int, results: list[AccountResult]) -> int:
            f.write("".join(f"{r.user_id},{r.status}\n" for r in results))  # type: ignore[attr-defined]
            f.flush()  # type: ignore[attr-defined]
            return f.tell()  # type: ignore[attr-defined,no-any-return]
        return on_batch

    with output.open("w") as f:
        state = JobState.open(state_path, "check", 100, accounts=1000, extra={"output": "ja.csv"})
        # 4 calls/s: the second window starts a second after the first one's answers.
        async with im.aclient(rates={"account_check": 4}, concurrency=2) as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(jobs.arun(client, "check", ids, state=state,
                                                 on_batch=writer(f)), 1.5)
        state.close(complete=False)
        assert state_path.exists()
    done = finished_batches(state_path)
    assert 4 <= len(done) < 10, done

    resumed = JobState.open(state_path, "check", 100, resume=True, accounts=1000,
                            extra={"output": "ja.csv"})
    assert resumed.done == done and resumed.earlier == 100 * len(done)
    assert resumed.output_end == output.stat().st_size  # every recorded batch's rows, no more
    with output.open("r+") as f:
        f.truncate(resumed.output_end)
        f.seek(0, 2)
        async with im.aclient() as client:
            result = await jobs.arun(client, "check", ids, state=resumed, on_batch=writer(f))
            assert client.stats.requests == 10 - len(done)
    resumed.close(complete=True)
    assert not state_path.exists()
    rows = [line.split(",") for line in output.read_text().splitlines()]
    assert sorted(u for u, _ in rows) == ids  # every account once
    assert {u: s for u, s in rows} == {u: "Imported" if i % 2 == 0 else "NotImported"
                                       for i, u in enumerate(ids)}
    assert result.status == {"Imported": 500, "NotImported": 500}
    assert result.accounts == 1000 and result.earlier == 100 * len(done)


def test_delete_job_missing_ok_and_failures_from_every_run(im: ImApp, tmp_path: Path) -> None:
    ids = ids_of("jm", 300)
    bad = "b" * 40  # not a valid UserID: fails alone (70402), the job goes on
    with im.client() as client:
        client.import_accounts(ids[:200])
    state = tmp_path / "jm.state"
    stop_at_batch(im, [*ids, bad], 2, "account_delete")
    with im.client(retry=NO_RETRY) as client:
        with pytest.raises(ApiError):
            jobs.run(client, "delete", [*ids, bad], state=state, missing_ok=True, concurrency=1)
        result = jobs.run(client, "delete", [*ids, bad], state=state, resume=True,
                          missing_ok=True)
    assert result.accounts == 301 and result.earlier == 200
    # ids[200:] never existed: with missing_ok they count as deleted; the bad UserID fails
    assert [(r.user_id, r.code) for r in result.failed] == [(bad, 70402)]
    assert set(statuses(im, ids).values()) == {"NotImported"}
    with im.client() as client, pytest.raises(ValueError, match="missing_ok"):
        jobs.run(client, "import", ids, missing_ok=True)


def test_the_cli_resumes_a_job_python_started(im: ImApp, tmp_path: Path) -> None:
    """One state-file format: a job of a stream started in Python (no total, no SHA-256: as
    stdin's) is resumed by ``timserver accounts import - --resume``."""
    ids = ids_of("jx", 500)
    state = tmp_path / "jx.state"
    stop_at_batch(im, ids, 3)
    with im.client(retry=NO_RETRY) as client, pytest.raises(ApiError):
        jobs.run(client, "import", (u for u in ids), state=state, concurrency=1)
    assert finished_batches(state) == {0, 1, 2}
    resumed = im.accounts("import", "-", "--state", str(state), "--resume", "--no-progress",
                          stdin="".join(u + "\n" for u in ids))
    assert resumed.returncode == 0, resumed.stderr
    assert "500 of 500 accounts done (300 by an earlier run)" in resumed.stderr
    assert not state.exists()
    assert set(statuses(im, ids).values()) == {"Imported"}
