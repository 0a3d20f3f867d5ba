"""The items of a command: where a request names its UserIDs, and how its answer reports an item
that failed. ``commands.py`` declares both per command; everything that needs a request's
UserIDs or fails some items reads the declaration instead of knowing request types:

* the journal (``serve --record-bodies``: the UserIDs a call names, to filter by),
* the emulator's fault rules (a rule naming a ``UserID`` matches the calls naming it;
  ``FailItems`` fails some items of a batch and serves the others: ``emulator/faults.py``).

The shapes of an answer's items (docs/protocol.md §7, §11):

``ResultList``   one result per item, in the request's order (account_check, account_delete:
                 ``ResultItem``; portrait_get: ``UserProfileItem``, plus ``Fail_Account``, the
                 UserIDs of the results with a ResultCode ≠ 0)
``FailList``     only the UserIDs that failed, each once (multiaccount_import:
                 ``FailAccounts``); items are dropped by UserID, not by position
``ErrorList``    the results of the items that succeeded, and an ``ErrorList`` of
                 ``{To_Account, ErrorCode}`` for those that failed (query_online_status,
                 querystate); when no item succeeds the call fails too (its ErrorCode)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET, Struct, structs


@dataclass(frozen=True)
class UserIDs:
    """Where a request names UserIDs: ``field`` holds one UserID (``array=False``), an array of
    UserIDs, or an array of objects whose ``key`` is the UserID."""

    field: str
    key: str | None = None
    array: bool = True

    def read(self, request: Any) -> list[str] | None:
        """The UserIDs, in order, duplicates kept; None when the request has no such field."""
        value = getattr(request, self.field, UNSET)
        if value is UNSET or value is None:
            return None
        if not self.array:
            return [value] if isinstance(value, str) else []
        if self.key is None:
            return list(value)
        return [getattr(item, self.key) for item in value]


@dataclass(frozen=True)
class ResultList:
    """One result per item, in the request's order; ``failed(UserID, code, info)`` makes the
    result of an item failed on purpose. ``fail_list``: the answer's list of the UserIDs whose
    result has a ResultCode ≠ 0 (absent when empty)."""

    field: str
    failed: Callable[[str, int, str], Struct]
    fail_list: str | None = None
    by_userid = False

    def merge(self, response: type[Struct], ids: list[str], chosen: set[int],
              served: Any | None, code: int, info: str) -> Struct:
        rest = iter(getattr(served, self.field) if served is not None else ())
        results = [self.failed(uid, code, info) if i in chosen else next(rest)
                   for i, uid in enumerate(ids)]
        extra: dict[str, Any] = {}
        if self.fail_list is not None:
            failed = [getattr(r, _userid_key(r)) for r in results if r.ResultCode != 0]
            extra[self.fail_list] = failed or UNSET
        return response(**{self.field: results}, **extra)


@dataclass(frozen=True)
class FailList:
    """Only the failed UserIDs, each once, in the request's order."""

    field: str
    by_userid = True

    def merge(self, response: type[Struct], ids: list[str], chosen: set[int],
              served: Any | None, code: int, info: str) -> Struct:
        failed = {ids[i] for i in chosen}
        also = set(getattr(served, self.field)) if served is not None else set()
        order = dict.fromkeys(uid for uid in ids if uid in failed or uid in also)
        return response(**{self.field: list(order)})


@dataclass(frozen=True)
class ErrorList:
    """``ok`` lists the items that succeeded, ``field`` the others as
    ``error(UserID, code)``; without any success the call answers FAIL with the rule's code
    (or the service's own, when it failed every item it served)."""

    ok: str
    field: str
    error: Callable[[str, int], Struct]
    by_userid = False

    def merge(self, response: type[Struct], ids: list[str], chosen: set[int],
              served: Any | None, code: int, info: str) -> Struct:
        codes = ({e.To_Account: e.ErrorCode for e in getattr(served, self.field)}
                 if served is not None else {})
        errors = [self.error(uid, code if i in chosen else codes[uid])
                  for i, uid in enumerate(ids) if i in chosen or uid in codes]
        ok = list(getattr(served, self.ok)) if served is not None else []
        answer = response(**{self.ok: ok, self.field: errors})
        if not ok:
            if served is not None and served.ErrorCode:
                code, info = served.ErrorCode, served.ErrorInfo
            answer = structs.replace(answer, ActionStatus="FAIL", ErrorCode=code, ErrorInfo=info)
        return answer


ItemAnswer = ResultList | FailList | ErrorList


def _userid_key(result: Struct) -> str:
    return "UserID" if hasattr(result, "UserID") else "To_Account"
