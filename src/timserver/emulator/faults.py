"""Fault rules: which calls they match, what they do to them, and the dispatcher's hook.

A rule belongs to one app. It matches that app's calls of one command (or of ``all``), and, when
it names a ``UserID``, only the calls whose body names that UserID. A matching call is counted
(atomically, in the database) and the rule *fires*:

* on every matching call, when it has neither a probability nor a count;
* with ``Probability`` P: the k-th matching call fires when ``draw(Seed, k) < P``, so the
  sequence of outcomes is a pure function of the seed, whatever process serves the call;
* for the next ``Times`` N matching calls: a count taken in the same transaction that counts
  the call, exact across the worker processes.

A rule that fires waits ``LatencyMs``, then does at most one of: answer ``Code`` (any ErrorCode
of the catalogue); ``Drop`` the connection without an answer; ``FailItems``: fail items of the
batch, the items naming ``UserID`` or, without one, each item with ``ItemProbability``; the
other items are served normally, and the answer reports the failed ones as the command reports
a failed item (``Command.items``, protocol/items.py): ``FailAccounts`` (multiaccount_import),
``ResultCode`` = the rule's ``Code`` (account_check, account_delete; portrait_get also lists
them in ``Fail_Account``), ``ErrorList`` entries (query_online_status, querystate; the call
fails when none is left). On a command of one account per call (account_import, kick,
portrait_set) it fails the call with ``Code``.

Where: after every check of docs/protocol.md §4 (auth, rate limit, body validation), just before the
command's handler — where Tencent's backend itself fails. Rules are evaluated oldest first; a
rule that only adds latency lets the next rules be evaluated, the first rule that fires with an
action ends the evaluation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..deadline import within
from ..protocol import messages as m
from ..protocol.commands import BY_NAME, Command
from ..protocol.errors import CATALOGUE, TimError, meaning
from ..server.hooks import AbortConnection, BadInput
from ..service.apps import rate_for
from ..service.ratelimit import Decision
from ..service.rules import userid_problem
from ..storage import App, FaultRecord, Storage

log = logging.getLogger("timserver.emulator")

ALL = "all"
MAX_RULES_PER_APP = 100
MAX_LATENCY_MS = 120_000  # one rule's LatencyMs
MAX_CALL_LATENCY_MS = 30_000  # what all the rules together add to one call, at most
MAX_HELD_CALLS = 64  # calls of one app waiting in injected latency at once; more: 70169
MAX_TIMES = 1_000_000
MAX_SEED = 2**63 - 1
DEFAULT_ITEM_CODE = 70500  # "internal error, retry" for an item failed on purpose

#: Keys of a rule as given (control endpoint, ``serve --faults`` file).
INPUT_KEYS = ("Command", "UserID", "Code", "LatencyMs", "Drop", "FailItems", "ItemProbability",
              "Probability", "Times", "Seed")
#: Keys a listing adds; a faults file may carry them (a saved listing), they are ignored.
OUTPUT_KEYS = ("Id", "SDKAppID", "Remaining", "Matched", "CreatedAt", "Description")

ServeFn = Callable[[Command, App, Any], Awaitable[bytes]]


class RuleError(BadInput):
    """A fault rule that cannot be accepted; the message says why, for a person."""


class DropConnection(AbortConnection):
    """Raised by the fault hook to close the connection without any answer (the server's
    front aborts the socket: ``server/transport.py``). In-process (an ASGI test transport) it
    reaches the caller as an exception."""

    def __init__(self, rule_id: int) -> None:
        super().__init__(f"connection dropped by fault rule {rule_id}")
        self.rule_id = rule_id


@dataclass(frozen=True)
class FaultSpec:
    """What a rule matches and does (stored as JSON; see ``to_json``)."""

    command: str = ALL
    user_id: str | None = None
    code: int | None = None  # the ErrorCode to answer; with fail_items, the items' ResultCode
    latency_ms: int = 0
    drop: bool = False
    fail_items: bool = False
    item_probability: float = 1.0
    probability: float | None = None
    times: int | None = None
    seed: int = 0

    @property
    def has_action(self) -> bool:
        return self.drop or self.fail_items or self.code is not None

    def to_json(self) -> dict[str, Any]:
        return {"Command": self.command, "UserID": self.user_id, "Code": self.code,
                "LatencyMs": self.latency_ms, "Drop": self.drop, "FailItems": self.fail_items,
                "ItemProbability": self.item_probability if self.fail_items else None,
                "Probability": self.probability,
                "Times": self.times, "Seed": self.seed}

    def describe(self) -> str:
        """One line for people: the CLI listing and the console."""
        what = []
        if self.latency_ms:
            what.append(f"wait {self.latency_ms} ms")
        if self.drop:
            what.append("drop the connection")
        elif self.fail_items:
            share = "" if self.item_probability >= 1 else f" ({self.item_probability:g} of them)"
            whose = f"items of {self.user_id!r}" if self.user_id is not None else "items"
            what.append(f"fail {whose}{share} with ResultCode {self.code or DEFAULT_ITEM_CODE}")
        elif self.code is not None:
            name = CATALOGUE[self.code].name if self.code in CATALOGUE else ""
            what.append(f"answer {self.code} {name}".rstrip())
        when = ("always" if self.probability is None and self.times is None
                else f"with probability {self.probability:g} (seed {self.seed})"
                if self.probability is not None else f"for the next {self.times} calls")
        scope = f"{self.command} calls" if self.command != ALL else "all calls"
        if self.user_id is not None:
            scope += f" naming {self.user_id!r}"
        return f"{scope}: {', then '.join(what)}, {when}"


def _int(obj: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise RuleError(f"{key} must be an integer from {low} to {high}")
    return value


def _fraction(obj: dict[str, Any], key: str, *, zero_ok: bool) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if (type(value) not in (int, float) or not math.isfinite(value)
            or not (0 <= value <= 1 if zero_ok else 0 < value <= 1)):
        raise RuleError(f"{key} must be a number from {0 if zero_ok else 'above 0'} to 1")
    return float(value)


def _flag(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise RuleError(f"{key} must be true or false")
    return value


def parse_rule(obj: Any, *, ignore_output_keys: bool = False) -> FaultSpec:
    """A rule from its JSON form, checked strictly; raises ``RuleError`` saying what is wrong.

    Without ``Seed`` a random one is chosen (and stored, so a listing shows how to reproduce).
    """
    if not isinstance(obj, dict):
        raise RuleError("a fault rule is a JSON object")
    allowed = set(INPUT_KEYS) | (set(OUTPUT_KEYS) if ignore_output_keys else set())
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        raise RuleError(f"unknown field {unknown[0]!r}; a rule has {', '.join(INPUT_KEYS)}")
    command = obj.get("Command", ALL)
    if command is None:
        command = ALL
    if not isinstance(command, str) or (command != ALL and command not in BY_NAME):
        raise RuleError(f"Command must be one of {', '.join(BY_NAME)} or {ALL}")
    user_id = obj.get("UserID")
    if user_id is not None:
        if not isinstance(user_id, str):
            raise RuleError("UserID must be a string")
        problem = userid_problem(user_id)
        if problem:
            raise RuleError(f"UserID is not a valid UserID: {problem}")
    code = obj.get("Code")
    if code is not None and (type(code) is not int or code not in CATALOGUE):
        raise RuleError("Code must be an ErrorCode of the catalogue (for example 70169, 70202, "
                        "70500 or 60007)")
    latency = _int(obj, "LatencyMs", 0, MAX_LATENCY_MS) or 0
    drop, fail_items = _flag(obj, "Drop"), _flag(obj, "FailItems")
    item_probability = _fraction(obj, "ItemProbability", zero_ok=False)
    probability = _fraction(obj, "Probability", zero_ok=True)
    times = _int(obj, "Times", 1, MAX_TIMES)
    seed = _int(obj, "Seed", 0, MAX_SEED)
    if drop and (fail_items or code is not None):
        raise RuleError("Drop cannot be combined with Code or FailItems: a dropped connection "
                        "answers nothing")
    if not (drop or fail_items or code is not None or latency):
        raise RuleError("a rule needs an action: Code, Drop, FailItems or LatencyMs > 0")
    if item_probability is not None and not fail_items:
        raise RuleError("ItemProbability goes with FailItems")
    if probability is not None and times is not None:
        raise RuleError("give Probability or Times, not both")
    return FaultSpec(command=command, user_id=user_id, code=code, latency_ms=latency, drop=drop,
                     fail_items=fail_items,
                     item_probability=1.0 if item_probability is None else item_probability,
                     probability=probability, times=times,
                     seed=secrets.randbelow(2**31) if seed is None else seed)


def draw(seed: int, k: int, item: int = -1) -> float:
    """A number in [0, 1) that depends only on (seed, k, item): the rule's k-th matching call
    fires when ``draw(seed, k) < Probability``; item i of a batch fails when
    ``draw(seed, k, i) < ItemProbability``."""
    digest = hashlib.sha256(f"timserver:{seed}:{k}:{item}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FaultRule:
    """A stored rule: its spec plus id, app and counters."""

    id: int
    sdkappid: int
    spec: FaultSpec
    remaining: int | None
    matched: int
    created_at: float
    exhausted: bool = False  # this process learnt that its count is used up

    @classmethod
    def from_record(cls, record: FaultRecord) -> FaultRule:
        spec = parse_rule(json.loads(record.spec))
        return cls(record.id, record.sdkappid, spec, record.remaining, record.matched,
                   record.created_at, exhausted=record.remaining == 0)

    def matches(self, command: str, user_ids: Callable[[], list[str]]) -> bool:
        if self.exhausted or (self.spec.command != ALL and self.spec.command != command):
            return False
        return self.spec.user_id is None or self.spec.user_id in user_ids()

    def fires(self, k: int) -> bool:
        """Whether the k-th matching call fires (the count of Times was taken already)."""
        p = self.spec.probability
        return p is None or draw(self.spec.seed, k) < p

    def to_json(self) -> dict[str, Any]:
        return {"Id": self.id, "SDKAppID": self.sdkappid, **self.spec.to_json(),
                "Remaining": self.remaining, "Matched": self.matched,
                "CreatedAt": self.created_at, "Description": self.spec.describe()}


def spec_text(spec: FaultSpec) -> str:
    return json.dumps(spec.to_json(), separators=(",", ":"), ensure_ascii=False)


# --- the dispatcher's hook ---------------------------------------------------------------------


class Holds:
    """Calls of each app waiting in injected latency now: at most ``MAX_HELD_CALLS`` each, so
    that latency rules cannot hold every connection the server has (other apps' included)."""

    def __init__(self, limit: int = MAX_HELD_CALLS) -> None:
        self.limit = limit
        self.held: dict[int, int] = {}

    async def wait(self, sdkappid: int, seconds: float,
                   disconnected: Callable[[], Awaitable[None]] | None) -> None:
        """Sleep ``seconds`` for the app; a caller that hangs up ends the call (nobody is left
        to answer): ``DropConnection``-like abort, without an answer."""
        if self.held.get(sdkappid, 0) >= self.limit:
            raise TimError(70169, f"Server timeout: more than {self.limit} calls of this app "
                                  "are already held by latency fault rules; retry.")
        self.held[sdkappid] = self.held.get(sdkappid, 0) + 1
        try:
            if disconnected is None:
                await asyncio.sleep(seconds)
                return
            sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
            hangup = asyncio.ensure_future(disconnected())
            try:
                done, _ = await asyncio.wait((sleeper, hangup),
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                hangup.cancel()
            if hangup in done and sleeper not in done:
                raise AbortConnection("the client hung up during injected latency")
        finally:
            left = self.held[sdkappid] - 1
            if left:
                self.held[sdkappid] = left
            else:
                del self.held[sdkappid]


def counted(rule: FaultRule) -> bool:
    """Whether a matching call must be counted in the database: for ``Times`` (an exact count
    across processes), ``Probability`` and ``ItemProbability`` (the k-th call's draws). A rule
    that does the same to every call costs no write."""
    spec = rule.spec
    return (spec.times is not None or spec.probability is not None
            or (spec.fail_items and spec.item_probability < 1))


async def apply(rules: list[FaultRule], storage: Storage, cmd: Command, app: App, request: Any,
                serve: ServeFn, deadline: float = 3.0, holds: Holds | None = None,
                disconnected: Callable[[], Awaitable[None]] | None = None,
                tally: Callable[[int], None] | None = None) -> bytes:
    """Serve one call through the app's fault rules (``serve`` is the dispatcher's handler).

    Counting a matching call of a ``counted`` rule is a database write; it gets the call's
    ``deadline`` (70169). Other rules' matches go to ``tally`` (written in batches). The
    latency of all the rules that fire adds up to ``MAX_CALL_LATENCY_MS`` at most."""
    cached: list[str] | None = None

    def user_ids() -> list[str]:
        nonlocal cached
        if cached is None:
            cached = cmd.user_ids_of(request)  # the command's declaration (protocol/items.py)
        return cached

    latency, fired = 0, None
    for rule in rules:
        if not rule.matches(cmd.name, user_ids):
            continue
        k: int | None = 0
        if counted(rule):
            k = await within(deadline, storage.hit_fault(rule.id))  # 70169 / 70500 if it fails
            if k is None:  # gone, or its count used up (by any process)
                rule.exhausted = True
                continue
            if not rule.fires(k):
                continue
        elif tally is not None:
            tally(rule.id)
        latency += rule.spec.latency_ms
        if rule.spec.has_action:
            fired = (rule, k)
            break
    if latency:
        await (holds or Holds()).wait(app.sdkappid, min(latency, MAX_CALL_LATENCY_MS) / 1000,
                                      disconnected)
    if fired is None:
        return await serve(cmd, app, request)
    rule, k = fired
    if rule.spec.drop:
        log.info("%s of app %d: connection dropped (fault rule %d)", cmd.name, app.sdkappid,
                 rule.id)
        raise DropConnection(rule.id)
    if rule.spec.fail_items:
        return await _fail_items(rule, k, cmd, app, request, serve)
    code = rule.spec.code
    assert code is not None
    if code == 60007:  # like the limiter's own refusal, for serve --throttle-hints
        raise InjectedRateLimit(_info(code, rule), rate_for(app, cmd.name))
    raise TimError(code, _info(code, rule))


class InjectedRateLimit(TimError):
    """An injected 60007, with a limiter-like decision (a 1 s wait) for the throttle hints."""

    def __init__(self, info: str, rate: int) -> None:
        super().__init__(60007, info)
        self.decision = Decision(False, rate, 0, 1.0)


def _info(code: int, rule: FaultRule) -> str:
    return f"{meaning(code)} [timserver fault rule {rule.id}]"


async def _fail_items(rule: FaultRule, k: int, cmd: Command, app: App, request: Any,
                      serve: ServeFn) -> bytes:
    """Fail the chosen items of the batch, serve the others, answer both as the command's
    answer reports items (``Command.items``: protocol/items.py). A command of one account per
    call (account_import, kick, portrait_set) fails as a whole."""
    spec = rule.spec
    code = spec.code or DEFAULT_ITEM_CODE
    info = _info(code, rule)
    where, ids = cmd.named(request)
    shape = cmd.items
    if shape is None or where is None or not where.array:
        raise TimError(code, info)
    chosen = {i for i, uid in enumerate(ids)
              if (spec.user_id is None or uid == spec.user_id)
              and (spec.item_probability >= 1 or draw(spec.seed, k, i) < spec.item_probability)}
    items = getattr(request, where.field)
    if shape.by_userid:  # every item of a failed UserID goes, duplicates included
        failed = {ids[i] for i in chosen}
        kept = [item for item, uid in zip(items, ids, strict=True) if uid not in failed]
    else:
        kept = [item for i, item in enumerate(items) if i not in chosen]
    served = None
    if kept:  # when every item fails, the handler is not called
        reduced = msgspec.structs.replace(request, **{where.field: kept})
        served = msgspec.json.decode(await serve(cmd, app, reduced), type=cmd.response)
    return m.encode(shape.merge(cmd.response, ids, chosen, served, code, info))
