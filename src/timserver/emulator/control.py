"""The emulator's control endpoints under ``/_timserver/``, declared for the pipeline.

Each is behind an app's admin credentials in the query (``sdkappid``, ``identifier``,
``usersig``; checked by the pipeline exactly like a /v4 call), so that an app only ever sees
and touches its own rules and data:

    GET  /_timserver/faults           the app's fault rules            → {"Rules": [...]}
    POST /_timserver/faults           add one rule (its JSON form)     → {"Rule": {...}}
    POST /_timserver/faults/clear     {} all rules, or {"Id": N} one   → {"Deleted": n}
    POST /_timserver/reset            {} accounts and their kicks; "Faults", "Clock", "Kicks"
                                      (the admins' kicks too): true for those as well
    GET  /_timserver/clock            the app's clock      → {"Offset", "ServerOffset", "Now", ...}
    POST /_timserver/clock            {"Offset": s} or {"Advance": s}: the app's own offset only
    GET  /_timserver/calls            the app's recorded /v4 calls (serve --record-bodies for
                                      bodies and UserIDs), filtered by command, user_id, code,
                                      since, until     → {"Count": n, "Calls": [...]}
    POST /_timserver/calls/clear      {} forget the app's recorded calls   → {"Cleared": n}

Every answer, good or bad, is Tencent's envelope with HTTP 200 (the pipeline builds it).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ..protocol.commands import BY_NAME
from ..server.hooks import Access, BadInput, Endpoint, EndpointCall, JournalEntry, Operation
from ..storage import App
from . import faults, state

if TYPE_CHECKING:
    from .plugin import EmulatorPlugin

MAX_BODY_BYTES = 64 * 1024


# --- what the endpoints take and answer, for the OpenAPI document (server/openapi.py) ----------
# The handlers check bodies themselves (faults.parse_rule, _only...): the structs describe them.

_COMMANDS = [*BY_NAME, faults.ALL]


class FaultRuleIn(Struct, kw_only=True):
    """A fault rule (docs/emulator.md): what it matches, and at most one action."""

    Command: Annotated[str, Meta(extra_json_schema={"enum": _COMMANDS})] = faults.ALL
    UserID: Annotated[str, Meta(max_length=32)] | None = None
    Code: Annotated[int, Meta(description="An ErrorCode of the catalogue to answer (with "
                                          "FailItems: the failed items' code).")] | None = None
    LatencyMs: Annotated[int, Meta(ge=0, le=faults.MAX_LATENCY_MS)] = 0
    Drop: bool = False
    FailItems: bool = False
    ItemProbability: Annotated[float, Meta(gt=0, le=1)] | None = None
    Probability: Annotated[float, Meta(ge=0, le=1)] | None = None
    Times: Annotated[int, Meta(ge=1, le=faults.MAX_TIMES)] | None = None
    Seed: Annotated[int, Meta(ge=0, le=faults.MAX_SEED)] | None = None


class FaultRuleOut(Struct, kw_only=True):
    """A stored rule, as listed."""

    Id: int
    SDKAppID: int
    Command: str
    UserID: str | None
    Code: int | None
    LatencyMs: int
    Drop: bool
    FailItems: bool
    ItemProbability: float | None
    Probability: float | None
    Times: int | None
    Seed: int
    Remaining: int | None
    Matched: int
    CreatedAt: float
    Description: str


class FaultRules(Struct, kw_only=True):
    Rules: list[FaultRuleOut]


class FaultRuleAdded(Struct, kw_only=True):
    Rule: FaultRuleOut


class FaultsClear(Struct, kw_only=True, forbid_unknown_fields=True):
    """``{}``: every rule of the app; ``{"Id": N}``: that one."""

    Id: Annotated[int, Meta(ge=1)] | UnsetType = UNSET


class FaultsCleared(Struct, kw_only=True):
    Deleted: int


class ResetIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """The app's accounts and their kicks always; these too when true."""

    Faults: bool = False
    Clock: bool = False
    Kicks: Annotated[bool, Meta(description="The admins' kicks too.")] = False


class ResetDone(Struct, kw_only=True):
    DeletedAccounts: int
    ForgottenKicks: int | UnsetType = UNSET
    DeletedRules: int | UnsetType = UNSET
    ClockOffset: float | UnsetType = UNSET


class ClockIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """One of: ``Offset`` (the app's own offset, seconds) or ``Advance`` (seconds added)."""

    Offset: float | UnsetType = UNSET
    Advance: float | UnsetType = UNSET


class ClockOut(Struct, kw_only=True):
    Offset: Annotated[float, Meta(description="The app's own offset, seconds.")]
    ServerOffset: Annotated[float, Meta(description="The server-wide offset (serve "
                                                    "--clock-offset), seconds.")]
    Now: Annotated[int, Meta(description="The time the app's UserSigs and kicks are judged "
                                         "by, Unix seconds.")]
    WallClock: int


class CallsQuery(Struct, kw_only=True):
    command: Annotated[str, Meta(description="Only this command's calls.",
                                 extra_json_schema={"enum": list(BY_NAME)})] | UnsetType = UNSET
    user_id: Annotated[str, Meta(description="Only calls whose body names this UserID (serve "
                                             "--record-bodies).",
                                 max_length=32)] | UnsetType = UNSET
    code: Annotated[int, Meta(description="Only calls answered with this ErrorCode.", ge=0,
                              le=2**31)] | UnsetType = UNSET
    since: Annotated[float, Meta(description="Only calls answered at or after (Unix s).",
                                 ge=0, le=2**40)] | UnsetType = UNSET
    until: Annotated[float, Meta(description="Only calls answered at or before (Unix s).",
                                 ge=0, le=2**40)] | UnsetType = UNSET
    limit: Annotated[int, Meta(description="The newest N (default 100).", ge=1)] = 100


class CallsOut(Struct, kw_only=True):
    Count: int
    Recording: Annotated[bool, Meta(description="Whether bodies and UserIDs are recorded "
                                                "(serve --record-bodies).")]
    Calls: list[JournalEntry]


class NoFields(Struct, kw_only=True, forbid_unknown_fields=True):
    """``{}``."""


class CallsCleared(Struct, kw_only=True):
    Cleared: int


def _only(body: dict[str, Any], *names: str) -> None:
    unknown = [key for key in body if key not in names]
    if unknown:
        accepted = ", ".join(names) if names else "no field"
        raise BadInput(f"unknown field {unknown[0]!r} (this endpoint takes {accepted})")


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if type(value) is not bool:
        raise BadInput(f"{name} must be true or false")
    return value


def _seconds(body: dict[str, Any], name: str) -> float:
    value = body[name]
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BadInput(f"{name} must be a number of seconds")
    return value


def _number(params: dict[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not low <= value <= high:
        raise BadInput(f"{name} must be a number from {low:g} to {high:g}")
    return value


def control_endpoints(plugin: EmulatorPlugin) -> list[Endpoint]:
    emulator = plugin.state
    storage = emulator.storage
    assert plugin.handles is not None, "setup() first"
    journal = plugin.handles.journal  # the server's: GET /_timserver/calls reads it

    def app_of(call: EndpointCall) -> App:
        assert call.app is not None  # Access.ADMIN
        return call.app

    async def list_faults(call: EndpointCall) -> dict[str, Any]:
        await plugin.flush_matches()  # this process's counts of every-call rules, written now
        rules = await state.list_rules(storage, app_of(call).sdkappid)
        return {"Rules": [rule.to_json() for rule in rules]}

    async def add_fault(call: EndpointCall) -> dict[str, Any]:
        spec = faults.parse_rule(await call.json(MAX_BODY_BYTES))
        rule = await state.add_rule(storage, app_of(call).sdkappid, spec)
        await emulator.refresh(force=True)  # this process's own change, at once
        return {"Rule": rule.to_json()}

    async def clear_faults(call: EndpointCall) -> dict[str, Any]:
        body = await call.json(MAX_BODY_BYTES)
        _only(body, "Id")
        rule_id = body.get("Id")
        if rule_id is not None and (type(rule_id) is not int or not 1 <= rule_id < 2**63):
            raise BadInput("Id must be a rule's id (an integer)")
        deleted = await state.clear_rules(storage, app_of(call).sdkappid, rule_id)
        await emulator.refresh(force=True)  # this process's own change, at once
        return {"Deleted": deleted}

    async def reset(call: EndpointCall) -> dict[str, Any]:
        body = await call.json(MAX_BODY_BYTES)
        _only(body, "Faults", "Clock", "Kicks")
        app = app_of(call)
        done = await state.reset_app(storage, app.sdkappid, faults=_flag(body, "Faults"),
                                     clock=_flag(body, "Clock"), kicks=_flag(body, "Kicks"))
        await emulator.forget_rates(app.sdkappid)
        await emulator.refresh(force=True)  # this process's own change, at once
        return done

    def clock_answer(app: App) -> dict[str, Any]:
        # Offset: the app's own; ServerOffset: the server-wide part (the operator's, every app);
        # Now: the time the app's UserSigs and kicks are judged by.
        return {"Offset": emulator.app_offset(app.sdkappid),
                "ServerOffset": emulator.clock.offset,
                "Now": int(emulator.clock.now(app.sdkappid)), "WallClock": int(time.time())}

    async def get_clock(call: EndpointCall) -> dict[str, Any]:
        return clock_answer(app_of(call))

    async def set_clock(call: EndpointCall) -> dict[str, Any]:
        body = await call.json(MAX_BODY_BYTES)
        _only(body, "Offset", "Advance")
        if ("Offset" in body) == ("Advance" in body):
            raise BadInput("give Offset (the app's own offset, in seconds) or Advance (seconds "
                           "to add to it), one of them")
        app = app_of(call)
        if "Offset" in body:  # the app's own offset: never another app's time
            await state.set_app_clock(storage, app.sdkappid, _seconds(body, "Offset"))
        else:
            await state.advance_app_clock(storage, app.sdkappid, _seconds(body, "Advance"))
        await emulator.refresh(force=True)  # this process's own change, at once
        return clock_answer(app)

    async def calls(call: EndpointCall) -> dict[str, Any]:
        params = call.params
        command = params.get("command") or None
        if command is not None and command not in BY_NAME:
            raise BadInput(f"command must be one of {', '.join(BY_NAME)}")
        user_id = params.get("user_id") or None
        if user_id is not None and (len(user_id.encode("utf-8", "replace")) > 32):
            raise BadInput("user_id is longer than a UserID (32 bytes)")
        if user_id is not None and not journal.record_bodies:
            raise BadInput("this server records no request bodies, so no UserIDs: start it "
                           "with serve --record-bodies to filter by user_id")
        limit = _number(params, "limit", int, 1, max(journal.size, 1)) or 100
        found = journal.entries(
            sdkappid=app_of(call).sdkappid, command=command, user_id=user_id,
            code=_number(params, "code", int, 0, 2**31), since=_number(params, "since", float, 0,
                                                                       2**40),
            until=_number(params, "until", float, 0, 2**40))
        return {"Count": len(found), "Recording": journal.record_bodies,
                "Calls": msgspec.to_builtins(found[-limit:])}

    async def clear_calls(call: EndpointCall) -> dict[str, Any]:
        _only(await call.json(MAX_BODY_BYTES))
        return {"Cleared": journal.clear(app_of(call).sdkappid)}

    return [
        Endpoint("/_timserver/calls", {"GET": calls}, Access.ADMIN, cors=True,
                 summary="The app's recorded /v4 calls", query=CallsQuery, response=CallsOut,
                 description="Oldest first, filtered; bodies and UserIDs with serve "
                             "--record-bodies only."),
        Endpoint("/_timserver/calls/clear", {"POST": clear_calls}, Access.ADMIN, cors=True,
                 summary="Forget the app's recorded calls", request=NoFields,
                 response=CallsCleared),
        Endpoint("/_timserver/faults", {"GET": list_faults, "POST": add_fault}, Access.ADMIN,
                 cors=True, docs={
                     "GET": Operation("The app's fault rules", response=FaultRules),
                     "POST": Operation("Add a fault rule", request=FaultRuleIn,
                                       response=FaultRuleAdded, resets=True,
                                       description="docs/emulator.md: Code, Drop, FailItems "
                                                   "or LatencyMs; Probability or Times.")}),
        Endpoint("/_timserver/faults/clear", {"POST": clear_faults}, Access.ADMIN, cors=True,
                 summary="Delete the app's fault rules (or one)", request=FaultsClear,
                 response=FaultsCleared),
        Endpoint("/_timserver/reset", {"POST": reset}, Access.ADMIN, cors=True,
                 docs={"POST": Operation("Empty the app: its accounts and kicks (and, on "
                                         "request, its rules, clock, admins' kicks)",
                                         request=ResetIn, response=ResetDone, resets=True)}),
        Endpoint("/_timserver/clock", {"GET": get_clock, "POST": set_clock}, Access.ADMIN,
                 cors=True, docs={
                     "GET": Operation("The app's clock", response=ClockOut),
                     "POST": Operation("Set or advance the app's own clock offset",
                                       request=ClockIn, response=ClockOut, resets=True)}),
    ]
