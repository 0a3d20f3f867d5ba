"""Bulk jobs that survive an interruption: import, check or delete any number of accounts, each
finished batch recorded in a state file, and a rerun with ``resume=True`` skips those batches.

    from timserver.client import Client, jobs

    with Client.from_env() as im:
        result = jobs.run(im, "import", accounts, state="users.import-state", resume=True)
        print(result.accounts, result.earlier, len(result.failed))

``run`` drives a :class:`~timserver.client.Client`, ``arun`` an
:class:`~timserver.client.AsyncClient`; both split the input into batches once (the bulk
helpers' engine, ``client/bulk.py``) and, for each finished batch, call ``on_batch`` and then
append the batch's line to the state (:class:`JobState`). On resume, a batch that an earlier run
finished is not sent again, and its UserIDs must be the ones that run read (a fingerprint per
batch, :func:`batch_digest`), else :class:`InputChanged`; a state file written for another job
(another command, batch size, number of accounts...) raises :class:`StateMismatch`.

The state file is the one of ``timserver accounts import|check|delete`` (``FILE.import-state``):
NDJSON, a header naming the job, then a line per finished batch, written with one ``write`` and
flushed, so a killed process loses at most the batches in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import msgspec

from .. import private
from . import bulk
from .bulk import AccountResult

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .sync import Client

#: What a job does: multiaccount_import, account_check or account_delete, in batches.
Kind = Literal["import", "check", "delete"]
OPERATIONS: dict[str, bulk.Operation[Any]] = {
    "import": bulk.IMPORT, "check": bulk.CHECK, "delete": bulk.DELETE}

#: The ``format`` of a state file's header.
STATE_FORMAT = "timserver-accounts-state"
#: account_delete's "no such account": not a failure with ``missing_ok=True``.
NOT_FOUND = 70107

#: ``on_batch(index, results)``: batch ``index`` is finished and about to be recorded. It may
#: return an ``int``, the position reached in an output it writes (bytes written so far, say):
#: the position is recorded with the batch, and :attr:`JobState.output_end` gives it back on
#: resume, so the output can be cut back to what the recorded batches wrote.
OnJobBatch = Callable[[int, list[AccountResult]], "int | None"]


class StateMismatch(ValueError):
    """``resume``: the state file was written for another job (another command, batch size,
    number of accounts, input or output)."""


class InputChanged(ValueError):
    """``resume``: a batch the earlier run finished does not hold the UserIDs it held then."""


def batch_digest(user_ids: Iterable[str]) -> str:
    """A short fingerprint of a batch's UserIDs, kept in the state to notice a changed input."""
    return hashlib.blake2b("\n".join(user_ids).encode(), digest_size=8).hexdigest()


def _path(path: str | os.PathLike[str] | None) -> Path | None:
    return None if path is None else Path(path)


@dataclass
class JobState:
    """The state of a job: which batches are finished, with their counts and failures.

    Open it with :meth:`open`; it is kept in memory only (no file) when the path is ``None``.
    In memory it holds totals and a few bytes per finished batch, never the accounts: a job may
    have millions. A torn last line (the process killed while writing it) is ignored on resume:
    that batch is sent again.
    """

    path: Path | None
    header: dict[str, Any]
    done: set[int] = field(default_factory=set)  # indexes of the finished batches
    accounts: int = 0  # accounts of the finished batches
    failed: dict[int, list[list[Any]]] = field(default_factory=dict)  # batch: [UserID, code, info]
    status: Counter[str] = field(default_factory=Counter)  # check: Imported / NotImported
    digests: dict[int, str] = field(default_factory=dict)  # of the batches of an earlier run
    output_end: int | None = None  # the furthest output position the batches recorded
    earlier: int = 0  # accounts finished by earlier runs (read on resume)
    _file: IO[str] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None, kind: Kind, batch_size: int, *,
             resume: bool = False, accounts: int | None = None, input_sha256: str | None = None,
             extra: Mapping[str, Any] | None = None) -> JobState:
        """Start a state file at ``path`` (0600: it names accounts), or with ``resume`` read the
        one an earlier run left there and append to it (none there: start afresh).

        The header names the job: ``kind``, ``batch_size``, the number of ``accounts`` and the
        ``input_sha256`` of the input when known, and ``extra`` entries (e.g. an output path).
        Resuming a state whose header differs raises :class:`StateMismatch`; OSError as
        ``open`` raises it.
        """
        if kind not in OPERATIONS:
            raise ValueError(f"kind must be one of {', '.join(OPERATIONS)}, not {kind!r}")
        header: dict[str, Any] = {"format": STATE_FORMAT, "command": kind,
                                  "batch_size": batch_size, "accounts": accounts,
                                  "input_sha256": input_sha256, **(extra or {})}
        state = cls(_path(path), header)
        if state.path is None:
            return state
        if resume and state.path.exists():
            state._read(state.path)
            state._file = private.open_private(state.path, "a", encoding="utf-8")
        else:
            state._file = private.open_private(state.path, "w", encoding="utf-8")
            state._write(header)
        return state

    @property
    def kind(self) -> Kind:
        kind: Kind = self.header["command"]
        return kind

    @property
    def batch_size(self) -> int:
        return int(self.header["batch_size"])

    def record(self, index: int, results: Sequence[AccountResult],
               output_end: int | None = None) -> None:
        """Batch ``index`` is finished: count it, and append its line to the file."""
        entry: dict[str, Any] = {
            "batch": index, "ok": sum(r.ok for r in results),
            "failed": [[r.user_id, r.code, r.info] for r in results if not r.ok],
            "status": Counter(r.status for r in results if r.status),
            "ids": batch_digest(r.user_id for r in results)}
        if output_end is not None:
            entry["out"] = output_end
        self._add(entry)
        if self._file is not None:
            self._write(entry)

    def failures(self) -> list[AccountResult]:
        """The failed accounts of the finished batches, earlier runs included, in batch order."""
        return [AccountResult(user_id, code, info) for index in sorted(self.failed)
                for user_id, code, info in self.failed[index]]

    def close(self, complete: bool) -> None:
        """Close the file; when the job is ``complete``, remove it (nothing is left to resume)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if complete and self.path is not None:
                self.path.unlink(missing_ok=True)

    def _add(self, entry: dict[str, Any]) -> None:
        index = int(entry["batch"])
        failed = entry["failed"]
        self.done.add(index)
        self.accounts += int(entry["ok"]) + len(failed)
        if failed:
            self.failed[index] = failed
        self.status.update(entry["status"])
        if "out" in entry:
            self.output_end = max(self.output_end or 0, int(entry["out"]))

    def _read(self, path: Path) -> None:
        with path.open(encoding="utf-8") as f:
            try:
                found = json.loads(f.readline())
            except ValueError:
                found = None
            if found != self.header:
                raise StateMismatch(f"{path} was written by another run (a different input, "
                                    "command, batch size or output)")
            for line in f:
                try:
                    entry = json.loads(line)
                    if int(entry["batch"]) in self.done:
                        continue
                    self._add(entry)
                    if "ids" in entry:
                        self.digests[int(entry["batch"])] = entry["ids"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: that batch is done again
        self.earlier = self.accounts

    def _write(self, entry: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()


@dataclass(frozen=True)
class JobResult:
    """What a finished job did, earlier runs included."""

    kind: Kind
    accounts: int  # accounts of the job (all finished)
    earlier: int  # of those, finished by earlier runs
    failed: list[AccountResult]  # the failed accounts, in batch order, earlier runs included
    status: Counter[str]  # check: how many were Imported / NotImported
    results: list[AccountResult]  # this run's, in input order (``collect=True``), else []

    @property
    def succeeded(self) -> int:
        return self.accounts - len(self.failed)


class _Job:
    """What ``run`` and ``arun`` share: no I/O but the state file's."""

    def __init__(self, kind: Kind, items: Iterable[Any], *,
                 state: JobState | str | os.PathLike[str] | None, resume: bool,
                 batch_size: int | None, missing_ok: bool, on_batch: OnJobBatch | None,
                 collect: bool) -> None:
        if kind not in OPERATIONS:
            raise ValueError(f"kind must be one of {', '.join(OPERATIONS)}, not {kind!r}")
        if missing_ok and kind != "delete":
            raise ValueError("missing_ok is for delete jobs")
        self.op = OPERATIONS[kind]
        if isinstance(state, JobState):
            if state.kind != kind:
                raise ValueError(f"the state is of a {state.kind} job, not {kind}")
            if batch_size is not None and batch_size != state.batch_size:
                raise ValueError(f"batch_size {batch_size}: the state's is {state.batch_size}")
            batch_size = state.batch_size
        size = bulk.check_size(self.op, batch_size)
        todo, count = bulk.numbered_batches(self.op, items, size)  # a list: checked here
        if isinstance(state, JobState):
            self.owned = False
        else:  # opened here, so closed here (and removed when the job is complete)
            self.owned = True
            state = JobState.open(state, kind, size, resume=resume,
                                  accounts=len(items) if isinstance(items, (list, tuple))
                                  else None)
        self.kind, self.state, self.missing_ok = kind, state, missing_ok
        self.on_batch, self.collect = on_batch, collect
        self.collected: dict[int, list[AccountResult]] = {}
        self.count = count
        if count is None:  # read as the batches are sent, and compared then
            self.todo: bulk.Batches = (
                (index, chunk) for index, chunk in todo if self._compare(index, chunk))
            return
        try:  # a list: every batch is compared before anything is sent
            checked = [(index, chunk) for index, chunk in todo if self._compare(index, chunk)]
        except InputChanged:
            self.close(False)
            raise
        self.todo, self.count = iter(checked), len(checked)

    def _compare(self, index: int, chunk: Sequence[Any]) -> bool:
        """False for a finished batch (skipped); raises if it is not what it was."""
        expected = self.state.digests.get(index)
        if expected is not None and batch_digest(map(self.op.user_id, chunk)) != expected:
            raise InputChanged(f"the input differs from the one of the run that wrote "
                               f"{self.state.path} (batch {index})")
        return index not in self.state.done

    def finished(self, index: int, results: list[AccountResult]) -> None:
        if self.missing_ok:  # the account is gone, which is what delete is for
            results = [msgspec.structs.replace(r, code=0, info="") if r.code == NOT_FOUND else r
                       for r in results]
        mark = self.on_batch(index, results) if self.on_batch is not None else None
        self.state.record(index, results, mark if type(mark) is int else None)
        if self.collect:
            self.collected[index] = results

    def close(self, complete: bool) -> JobResult:
        if self.owned:
            self.state.close(complete)
        return JobResult(self.kind, self.state.accounts, self.state.earlier,
                         self.state.failures(), Counter(self.state.status),
                         [r for index in sorted(self.collected) for r in self.collected[index]])


def run(client: Client, kind: Kind, items: Iterable[Any], *,
        state: JobState | str | os.PathLike[str] | None = None, resume: bool = False,
        batch_size: int | None = None, concurrency: int | None = None, missing_ok: bool = False,
        on_batch: OnJobBatch | None = None, collect: bool = True) -> JobResult:
    """Import, check or delete (``kind``) the accounts of ``items`` in batches, recording each
    finished batch in ``state``.

    ``items`` are what ``client.import_accounts`` / ``check_accounts`` / ``delete_accounts``
    take (a list is checked whole first; any other iterable is read a batch at a time).
    ``state`` is a path (the file is made 0600, or with ``resume=True`` an earlier run's file
    there is continued, and it is removed once the job is complete; kept when the run raises),
    a :class:`JobState` you opened (and close), or ``None`` (nothing kept). ``missing_ok``
    (delete): a missing account (70107) counts as deleted. ``on_batch``: see
    :data:`OnJobBatch`; it is never called by two threads at once. With ``collect=False`` the
    results are not kept (``JobResult.results`` is empty): memory then stays the same for any
    number of accounts.

    Raises what the bulk helpers raise (a run that cannot go on: finished batches are recorded),
    :class:`StateMismatch` and :class:`InputChanged`.
    """
    job = _Job(kind, items, state=state, resume=resume, batch_size=batch_size,
               missing_ok=missing_ok, on_batch=on_batch, collect=collect)
    complete = False
    try:
        client._run_batches(job.op, job.todo, job.count, concurrency=concurrency,
                            on_batch=job.finished, collect=False)
        complete = True
    finally:
        result = job.close(complete)
    return result


async def arun(client: AsyncClient, kind: Kind, items: Iterable[Any], *,
               state: JobState | str | os.PathLike[str] | None = None, resume: bool = False,
               batch_size: int | None = None, concurrency: int | None = None,
               missing_ok: bool = False, on_batch: OnJobBatch | None = None,
               collect: bool = True) -> JobResult:
    """:func:`run` for an :class:`~timserver.client.AsyncClient`, awaited."""
    job = _Job(kind, items, state=state, resume=resume, batch_size=batch_size,
               missing_ok=missing_ok, on_batch=on_batch, collect=collect)
    complete = False
    try:
        await client._run_batches(job.op, job.todo, job.count, concurrency=concurrency,
                                  on_batch=job.finished, collect=False)
        complete = True
    finally:
        result = job.close(complete)
    return result


__all__ = ["STATE_FORMAT", "InputChanged", "JobResult", "JobState", "Kind", "OnJobBatch",
           "StateMismatch", "arun", "batch_digest", "run"]
