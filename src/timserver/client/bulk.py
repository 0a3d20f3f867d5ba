"""Bulk helpers: any number of accounts, in batches of a command's maximum, a result per account.

The logic of one batch is a *plan* (a generator) that yields the calls it needs and receives their
outcomes; it does no I/O, so the sync client (threads) and the async client (tasks) drive the same
plan. A batch whose content the server refuses as a whole (70402, 60015, 40601, 70398) gives each
of its accounts that code, and the run goes on; any other failure (a wrong key, the network down
after all retries) stops the run and is raised: finished batches were reported to ``on_batch``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import UNSET, Struct

from ..protocol import commands as c
from ..protocol import messages as m
from ..protocol.commands import Command
from ._exceptions import ApiError, NetworkError

#: An account to import: ``AccountListItem(UserID=..., Nick=..., FaceUrl=...)``.
Account = m.AccountListItem

#: Call-level codes that condemn the content of one batch, not the whole run.
BATCH_CODES: frozenset[int] = frozenset({70402, 60015, 40601, 70398})


class AccountResult(Struct, frozen=True, gc=False):
    """What became of one account: ``code`` 0 is success; ``status`` is set by account_check.

    (Not tracked by the garbage collector: a run of a million accounts keeps a million of these,
    and scanning them would pause the event loop for tens of milliseconds, enough to upset the
    pacing.)
    """

    user_id: str
    code: int = 0
    info: str = ""
    status: str | None = None  # "Imported" / "NotImported" (account_check only)

    @property
    def ok(self) -> bool:
        return self.code == 0


#: ``on_batch(index, results)``: batch ``index`` (0-based, of ``batch_size`` items) is finished.
OnBatch = Callable[[int, list[AccountResult]], None]


@dataclass(frozen=True, slots=True)
class Call:
    command: Command[Any, Any]
    request: Struct


Outcome = Any  # a response struct, or the ApiError the call raised
Plan = Generator[list[Call], list[Outcome], list[AccountResult]]

ItemT = TypeVar("ItemT")


class Operation(Generic[ItemT]):
    command: Command[Any, Any]

    def prepare(self, items: Iterable[Any]) -> list[ItemT]:
        return [_user_id(x) for x in items]  # type: ignore[misc]

    def user_id(self, item: ItemT) -> str:
        return item  # type: ignore[return-value]

    def request(self, batch: Sequence[ItemT]) -> Struct:
        raise NotImplementedError

    def plan(self, batch: Sequence[ItemT]) -> Plan:
        (outcome,) = yield [Call(self.command, self.request(batch))]
        if isinstance(outcome, ApiError):
            if outcome.code not in BATCH_CODES:
                raise outcome
            return [AccountResult(self.user_id(x), outcome.code, outcome.info) for x in batch]
        return (yield from self.results(batch, outcome))

    def results(self, batch: Sequence[ItemT], response: Any) -> Plan:
        raise NotImplementedError
        yield  # a generator


def _user_id(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"a UserID must be a str, not {type(value).__name__}: {value!r}")
    return value


def _per_item(cmd: Command[Any, Any], user_ids: Sequence[str], items: Sequence[Any],
              make: Callable[[Any], AccountResult]) -> list[AccountResult]:
    """Match ``ResultItem`` to the request: item for item (docs/protocol.md §7.8), else by UserID."""
    if [i.UserID for i in items] == list(user_ids):
        return [make(i) for i in items]
    by_id = {i.UserID: i for i in items}
    missing = [u for u in user_ids if u not in by_id]
    if missing:
        raise NetworkError(f"the answer has no ResultItem for {missing[0]!r}", command=cmd.name,
                           status_code=200, retryable=False)
    return [make(by_id[u]) for u in user_ids]


class CheckOperation(Operation[str]):
    command = c.ACCOUNT_CHECK

    def request(self, batch: Sequence[str]) -> Struct:
        return m.AccountCheckRequest(CheckItem=[m.UserRef(UserID=u) for u in batch])

    def results(self, batch: Sequence[str], response: m.AccountCheckResponse) -> Plan:
        return _per_item(self.command, batch, response.ResultItem, lambda i: AccountResult(
            i.UserID, i.ResultCode, i.ResultInfo, i.AccountStatus))
        yield


class DeleteOperation(Operation[str]):
    command = c.ACCOUNT_DELETE

    def request(self, batch: Sequence[str]) -> Struct:
        return m.AccountDeleteRequest(DeleteItem=[m.UserRef(UserID=u) for u in batch])

    def results(self, batch: Sequence[str], response: m.AccountDeleteResponse) -> Plan:
        return _per_item(self.command, batch, response.ResultItem, lambda i: AccountResult(
            i.UserID, i.ResultCode, i.ResultInfo))
        yield


class ImportOperation(Operation[m.AccountListItem]):
    """multiaccount_import; each account it lists in ``FailAccounts`` (which says no why) is
    imported once more alone with account_import, whose ErrorCode is then its result."""

    command = c.MULTIACCOUNT_IMPORT

    def prepare(self, items: Iterable[Any]) -> list[m.AccountListItem]:
        out = []
        for x in items:
            if isinstance(x, m.AccountListItem):
                out.append(x)
            elif isinstance(x, str):
                out.append(m.AccountListItem(UserID=x))
            elif isinstance(x, Mapping):
                try:
                    out.append(msgspec.convert(x, m.AccountListItem))
                except msgspec.ValidationError as exc:
                    raise TypeError(f"not an account ({exc}): {x!r}") from None
            else:
                raise TypeError(f"an account is a UserID, a mapping or an Account, not {x!r}")
        return out

    def user_id(self, item: m.AccountListItem) -> str:
        return item.UserID

    def request(self, batch: Sequence[m.AccountListItem]) -> Struct:
        if all(a.Nick is UNSET and a.FaceUrl is UNSET for a in batch):
            # The original format: every server and SDK generation knows it (docs/protocol.md §7.2).
            return m.MultiAccountImportRequest(Accounts=[a.UserID for a in batch])
        return m.MultiAccountImportRequest(AccountList=list(batch))

    def results(self, batch: Sequence[m.AccountListItem],
                response: m.MultiAccountImportResponse) -> Plan:
        listed = set(response.FailAccounts)
        last = {a.UserID: a for a in batch if a.UserID in listed}  # the last occurrence counts
        found: dict[str, tuple[int, str]] = {}
        if last:
            outcomes = yield [Call(c.ACCOUNT_IMPORT, m.AccountImportRequest(
                UserID=a.UserID, Nick=a.Nick, FaceUrl=a.FaceUrl)) for a in last.values()]
            for user_id, outcome in zip(last, outcomes, strict=True):
                if isinstance(outcome, ApiError):
                    if outcome.code not in BATCH_CODES:
                        raise outcome
                    found[user_id] = (outcome.code, outcome.info)
                else:
                    found[user_id] = (0, "")
        return [AccountResult(a.UserID, *found.get(a.UserID, (0, ""))) for a in batch]


CHECK = CheckOperation()
DELETE = DeleteOperation()
IMPORT = ImportOperation()


def batches(items: Sequence[ItemT], size: int) -> list[Sequence[ItemT]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


#: ``(index, batch)`` pairs: the batches a run sends, numbered from 0 in input order.
Batches = Iterator[tuple[int, Sequence[Any]]]


def numbered_batches(op: Operation[Any], items: Iterable[Any], size: int,
                     skip: Collection[int] = ()) -> tuple[Batches, int | None]:
    """The one place the input is split: (index, batch) pairs, without the ``skip`` ones, and
    how many pairs there are when that is known.

    A list or tuple is checked whole before anything is sent (a bad item raises at once); any
    other iterable (a generator, a file being read) is consumed a batch at a time, as the batches
    are sent: memory stays at ``concurrency`` batches however long the input. A skipped batch is
    read (and checked) all the same: the batches after it keep their numbers.
    """
    if isinstance(items, (list, tuple)):
        prepared = op.prepare(items)
        todo = [(index, chunk) for index, chunk in enumerate(batches(prepared, size))
                if index not in skip]
        return iter(todo), len(todo)

    def lazily() -> Batches:
        source = iter(items)
        for index in itertools.count():
            chunk = list(itertools.islice(source, size))
            if not chunk:
                return
            prepared = op.prepare(chunk)
            if index not in skip:
                yield index, prepared
    return lazily(), None


def workers(concurrency: int, count: int | None) -> int:
    """Threads or tasks to run ``count`` batches (``None``: not known) ``concurrency`` at once."""
    return concurrency if count is None else min(concurrency, count)


def check_size(op: Operation[Any], batch_size: int | None) -> int:
    limit = op.command.max_items
    size = limit if batch_size is None else batch_size
    if not 1 <= size <= limit:
        raise ValueError(f"batch_size must be 1..{limit} for {op.command.name}")
    return size
