"""The emulator's state: fault rules, the clock offsets, reset; and the per-process ``Emulator``.

The operations (``add_rule``, ``reset_app``, ``set_clock``, ``set_app_clock``...) work on a
``Storage`` alone, so the CLI and the control endpoints share them. Each change bumps the
database's ``emulator_version``; ``Emulator.refresh`` (one tiny read before each /v4 call) reloads
the process's copy when the version moved, so a rule added by the CLI reaches every worker on its
next call.

The clock is per app: app N's time is the wall clock + the server-wide offset (the operator's:
``serve --clock-offset``, ``timserver clock set``) + app N's own offset (its admin's:
``POST /_timserver/clock``, ``timserver clock set --sdkappid N``), so that one app's admin never
moves another app's time.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..deadline import within
from ..protocol.commands import BY_NAME
from ..server.hooks import BadInput
from ..service.clock import Clock
from ..storage import App, Storage
from . import faults
from .faults import MAX_RULES_PER_APP, FaultRule, FaultSpec, RuleError

log = logging.getLogger("timserver.emulator")

MAX_CLOCK_OFFSET = 100 * 366 * 86400  # seconds, either way: a century is enough for any test
# An app's time (server-wide offset + its own) is kept within MAX_CLOCK_OFFSET of the wall clock
# too, so that a UserSig signed beyond it (timserver.testing's control calls) always works.
MAX_FAULTS_FILE_BYTES = 1024 * 1024
REFRESH_TIMEOUT = 0.25  # seconds a refresh may take before the call goes on without it
REFRESH_BACKOFF = 1.0  # seconds without refresh attempts after one failed


class StateError(BadInput):
    """A request about emulator state that cannot be done; the message says why."""


# --- operations on storage (CLI and control endpoints) -----------------------------------------


async def add_rule(storage: Storage, sdkappid: int, spec: FaultSpec) -> FaultRule:
    if len(await storage.list_faults(sdkappid)) >= MAX_RULES_PER_APP:
        raise RuleError(f"app {sdkappid} already has {MAX_RULES_PER_APP} fault rules, the most "
                        "an app may have; clear some first")
    record = await storage.add_fault(sdkappid, faults.spec_text(spec), spec.times)
    return FaultRule.from_record(record)


async def list_rules(storage: Storage, sdkappid: int | None = None) -> list[FaultRule]:
    rules = []
    for record in await storage.list_faults(sdkappid):
        try:
            rules.append(FaultRule.from_record(record))
        except (RuleError, ValueError):
            log.warning("fault rule %d of app %d is unreadable; ignored", record.id,
                        record.sdkappid)
    return rules


async def clear_rules(storage: Storage, sdkappid: int, rule_id: int | None = None) -> int:
    return await storage.delete_faults(sdkappid, rule_id)


def check_offset(seconds: Any) -> float:
    if type(seconds) not in (int, float) or not math.isfinite(seconds) \
            or abs(seconds) > MAX_CLOCK_OFFSET:
        raise StateError(f"the clock offset must be a number of seconds from -{MAX_CLOCK_OFFSET} "
                         f"to {MAX_CLOCK_OFFSET}")
    return round(float(seconds), 3)


async def set_clock(storage: Storage, seconds: float) -> float:
    """Set the server-wide offset (every app; the operator's: CLI and ``serve``)."""
    offset = check_offset(seconds)
    await storage.set_clock_offset(offset)
    return offset


async def advance_clock(storage: Storage, seconds: float) -> float:
    return await set_clock(storage, await storage.clock_offset() + check_offset(seconds))


async def set_app_clock(storage: Storage, sdkappid: int, seconds: float) -> float:
    """Set app ``sdkappid``'s own offset, added to the server-wide one (that app only)."""
    offset = check_offset(seconds)
    if offset:
        total = await storage.clock_offset() + offset
        if abs(total) > MAX_CLOCK_OFFSET:
            raise StateError(f"the app's time would be {total:+g} s from the wall clock (the "
                             "server-wide offset plus its own); it must stay within "
                             f"{MAX_CLOCK_OFFSET} s")
    await storage.set_app_clock_offset(sdkappid, offset)
    return offset


async def advance_app_clock(storage: Storage, sdkappid: int, seconds: float) -> float:
    step = check_offset(seconds)
    return await set_app_clock(storage, sdkappid,
                               await storage.app_clock_offset(sdkappid) + step)


def bounded(seconds: float) -> float:
    """An offset kept within ``MAX_CLOCK_OFFSET`` of the wall clock."""
    return max(-MAX_CLOCK_OFFSET, min(MAX_CLOCK_OFFSET, seconds))


async def reset_app(storage: Storage, sdkappid: int, *, faults: bool = False,
                    clock: bool = False, kicks: bool = False) -> dict[str, Any]:
    """Empty an app: its accounts and their kicks (admins stay, with their kicks: a revoked
    admin UserSig stays revoked); its fault rules, its own clock offset and its admins' kicks
    when asked (the server-wide offset is the operator's: it stays). Returns what was done, for
    the answer. Only a valid admin UserSig can ask, so ``kicks`` revives no revoked one for a
    caller who holds nothing else."""
    done: dict[str, Any] = {"DeletedAccounts": await storage.reset_accounts(sdkappid)}
    if kicks:
        done["ForgottenKicks"] = await storage.unkick(sdkappid)
    if faults:
        done["DeletedRules"] = await storage.delete_faults(sdkappid)
    if clock:
        await storage.set_app_clock_offset(sdkappid, 0.0)
        done["ClockOffset"] = 0.0
    return done


def _rules_in(text: str) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None  # maybe NDJSON: one rule per line
        else:
            if isinstance(data, list):
                return data
            if isinstance(data, dict) and isinstance(data.get("Rules"), list):
                return data["Rules"]
            if isinstance(data, dict):
                return [data]
    found = []
    for number, line in enumerate(stripped.split("\n"), 1):
        if line.strip():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RuleError(f"line {number} is not JSON: {exc.msg}") from None
    return found


def read_faults_file(path: str | Path, apps: Sequence[App]) -> list[tuple[int, FaultSpec]]:
    """The rules of a faults file: a JSON array of rules, ``{"Rules": [...]}``, or one rule per
    line (what ``timserver faults list --json`` prints). A rule names its app with ``SDKAppID``;
    it may leave it out when the database holds one app only."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FAULTS_FILE_BYTES:
            raise RuleError(f"{file} is larger than {MAX_FAULTS_FILE_BYTES} bytes")
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read {file}: {exc}") from None
    known = {app.sdkappid for app in apps}
    rules = []
    for number, obj in enumerate(_rules_in(text), 1):
        where = f"{file}, rule {number}"
        if not isinstance(obj, dict):
            raise RuleError(f"{where}: a fault rule is a JSON object")
        sdkappid = obj.get("SDKAppID")
        if sdkappid is None:
            if len(known) != 1:
                raise RuleError(f"{where}: say which app with SDKAppID (the database holds "
                                f"{len(known)} apps)")
            (sdkappid,) = known
        if type(sdkappid) is not int or sdkappid not in known:
            raise RuleError(f"{where}: SDKAppID {sdkappid!r} is not an app of the database")
        try:
            rules.append((sdkappid, faults.parse_rule(obj, ignore_output_keys=True)))
        except RuleError as exc:
            raise RuleError(f"{where}: {exc}") from None
    per_app: dict[int, int] = {}
    for sdkappid, _ in rules:
        per_app[sdkappid] = per_app.get(sdkappid, 0) + 1
        if per_app[sdkappid] > MAX_RULES_PER_APP:
            raise RuleError(f"{file}: more than {MAX_RULES_PER_APP} rules for app {sdkappid}")
    return rules


async def load_faults_file(storage: Storage, path: str | Path) -> list[FaultRule]:
    """``serve --faults FILE``: the apps the file names get exactly the file's rules."""
    rules = read_faults_file(path, await storage.list_apps())
    for sdkappid in dict.fromkeys(sdkappid for sdkappid, _ in rules):
        await storage.delete_faults(sdkappid)
    return [await add_rule(storage, sdkappid, spec) for sdkappid, spec in rules]


# --- the per-process copy ------------------------------------------------------------------------


class Emulator:
    """One server process's view of the emulator state, and the dispatcher's fault hook.

    ``refresh`` runs before each /v4 call: it reads ``emulator_version`` and, when it moved,
    reloads every rule and the clock offsets, the server-wide one and each app's own (set on the
    dispatcher's ``Clock``, so that each app's UserSig expiry and kicks follow its own time).
    ``serve`` is the hook the dispatcher calls just before a handler.
    """

    def __init__(self, storage: Storage, clock: Clock, limiter: object | None = None, *,
                 deadline: float = 3.0, base_offset: float | None = None) -> None:
        self.storage = storage
        self.deadline = deadline
        self.clock = clock
        # serve --clock-offset, under the database's offset (by default: the clock's own)
        self.base_offset = clock.offset if base_offset is None else base_offset
        clock.set_offsets(bounded(self.base_offset), {})
        self.limiter = limiter
        self.offset = 0.0  # the stored server-wide offset
        self.app_offsets: dict[int, float] = {}  # each app's own offset, where it has one
        self._version: int | None = None
        self._inline = storage.capabilities.runs_inline
        self._rules: dict[int, list[FaultRule]] = {}
        self._retry_at = 0.0

    async def refresh(self, *, force: bool = False) -> None:
        """Reload rules and clock offsets when the database says they changed.

        Bounded: a database that does not answer within ``REFRESH_TIMEOUT`` leaves the copy as it
        is (the call then meets the failure itself, under its deadline: 70169 / 70500), and the
        next attempts wait ``REFRESH_BACKOFF``, so that an outage costs calls no extra time.
        """
        if not force and self._inline and self._version is not None:
            # The usual call, on storage that answers inline (SQLite): one memoised read of the
            # version and nothing else; no task, timer or coroutine of ours.
            reading = self.storage.emulator_version()
            try:
                reading.send(None)
            except StopIteration as done:
                if done.value == self._version:
                    return
            except Exception:  # noqa: S110 - the full path below meets it again and backs off
                pass
            else:
                reading.close()
        now = time.monotonic()
        if now < self._retry_at and not force:
            return
        try:
            loaded = await within(REFRESH_TIMEOUT, self._load(force), eager=self._inline)
        except Exception:  # any failure, a driver's own too: the call meets it under its deadline
            log.debug("cannot refresh the emulator state", exc_info=True)
            self._retry_at = now + REFRESH_BACKOFF
            return
        if loaded is not None:
            version, self._rules, self.offset, self.app_offsets = loaded
            self._version = version
            server_wide = self.base_offset + self.offset
            self.clock.set_offsets(bounded(server_wide), {
                sdkappid: bounded(server_wide + own)
                for sdkappid, own in self.app_offsets.items()})

    async def _load(self, force: bool) -> tuple[int, dict[int, list[FaultRule]], float,
                                                 dict[int, float]] | None:
        version = await self.storage.emulator_version()
        if version == self._version and not force:
            return None
        rules: dict[int, list[FaultRule]] = {}
        for rule in await list_rules(self.storage):
            rules.setdefault(rule.sdkappid, []).append(rule)
        return (version, rules, await self.storage.clock_offset(),
                await self.storage.app_clock_offsets())

    def app_offset(self, sdkappid: int) -> float:
        """App ``sdkappid``'s own offset, as last loaded."""
        return self.app_offsets.get(sdkappid, 0.0)

    def rules(self, sdkappid: int) -> list[FaultRule]:
        return list(self._rules.get(sdkappid, ()))

    def live_rules(self, sdkappid: int) -> list[FaultRule] | None:
        """The app's rules as loaded (not a copy: the hot path), or None."""
        return self._rules.get(sdkappid)

    async def forget_rates(self, sdkappid: int) -> None:
        """Empty the app's rate-limit windows (reset), when the limiter can."""
        forget = getattr(self.limiter, "forget", None)
        if forget is not None:
            for name in BY_NAME:
                done = forget((sdkappid, name))
                if inspect.isawaitable(done):  # Redis
                    await done
