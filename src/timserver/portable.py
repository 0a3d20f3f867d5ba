"""Portable state: a whole installation as JSON Lines (``timserver export`` / ``import``).

One record per line, each a JSON object whose ``type`` says what it is, in this order::

    {"type":"timserver-export","version":1}                  the header, always first
    {"type":"app","sdkappid":...,"key":...,"edition":...,"admins":[...],"limits":{...},...}
    {"type":"clock","sdkappid":null,"offset":0.0}            server-wide, then each app's own
    {"type":"account","sdkappid":...,"user_id":...,"nick":...,"face_url":...,"admin":...,...}
    {"type":"kick","sdkappid":...,"user_id":...,"kicked_at":...}
    {"type":"fault","sdkappid":...,"rule":{...},"remaining":...,"matched":...,"created_at":...}
    {"type":"end","records":N}                               N records between header and end

Apps come first (by SDKAppID), then the clock offsets; then, app by app, its accounts and its
kicks in UserID order (byte order of UTF-8: the order of SQLite and of PostgreSQL's "C"
collation, so both backends write the same file) and its fault rules, oldest first. Nothing in it
depends on the backend or the time of the export: exporting what was imported gives the same bytes.

Both directions stream: the export reads accounts and kicks page by page, the import reads the
file line by line and writes accounts in batches, so memory stays flat for any number of
accounts. The import reads the file twice: first every line is checked (the format, each
record's rules, the order, the end record that tells a truncated file), and only a file found
whole and valid is applied, so a bad file changes nothing.

The file holds the apps' secret keys: writers create it readable by its owner only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from .emulator.faults import RuleError, parse_rule, spec_text
from .emulator.state import StateError, check_offset
from .service import apps as app_rules
from .service.rules import profile_problem, userid_problem
from .storage import Account, App, AppExists, FaultRecord, Storage

FORMAT = "timserver-export"
VERSION = 1
PAGE = 5_000  # accounts (or kicks) read, or written, at a time
MAX_LINE = 64 * 1024  # bytes; a record is far smaller (a UserID 32 bytes, a profile field 500)


class PortableError(ValueError):
    """A state file that cannot be imported; the message names the line and the problem."""


# --- the records ------------------------------------------------------------------------------


class Header(msgspec.Struct, tag=FORMAT, tag_field="type", forbid_unknown_fields=True):
    version: int


class AppRecord(msgspec.Struct, tag="app", tag_field="type", forbid_unknown_fields=True):
    sdkappid: int
    key: str
    edition: str
    admins: list[str]
    limits: dict[str, int]
    created_at: float


class ClockRecord(msgspec.Struct, tag="clock", tag_field="type", forbid_unknown_fields=True):
    sdkappid: int | None  # None: the server-wide offset
    offset: float


class AccountRecord(msgspec.Struct, tag="account", tag_field="type", forbid_unknown_fields=True):
    sdkappid: int
    user_id: str
    nick: str | None
    face_url: str | None
    admin: bool
    created_at: float


class KickRecord(msgspec.Struct, tag="kick", tag_field="type", forbid_unknown_fields=True):
    sdkappid: int
    user_id: str
    kicked_at: int


class FaultRuleRecord(msgspec.Struct, tag="fault", tag_field="type", forbid_unknown_fields=True):
    sdkappid: int
    rule: dict[str, Any]
    remaining: int | None
    matched: int
    created_at: float


class End(msgspec.Struct, tag="end", tag_field="type", forbid_unknown_fields=True):
    records: int


Record = Header | AppRecord | ClockRecord | AccountRecord | KickRecord | FaultRuleRecord | End
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Record).decode


@dataclass
class Counts:
    apps: int = 0
    accounts: int = 0
    kicks: int = 0
    faults: int = 0
    clocks: int = 0

    def add(self, record: Any) -> None:
        name = {AppRecord: "apps", AccountRecord: "accounts", KickRecord: "kicks",
                FaultRuleRecord: "faults", ClockRecord: "clocks"}[type(record)]
        setattr(self, name, getattr(self, name) + 1)

    @property
    def records(self) -> int:
        return self.apps + self.accounts + self.kicks + self.faults + self.clocks

    def summary(self) -> str:
        def n(count: int, what: str) -> str:
            return f"{count:,} {what}{'' if count == 1 else 's'}"
        return (f"{n(self.apps, 'app')}, {n(self.accounts, 'account')}, {n(self.kicks, 'kick')}, "
                f"{n(self.faults, 'fault rule')}")


# --- export -----------------------------------------------------------------------------------


async def export_state(storage: Storage, out: IO[bytes]) -> Counts:
    """Write the whole database to ``out`` (binary), record by record; returns what it wrote."""
    counts = Counts()

    def write(record: Any) -> None:
        out.write(_encode(record) + b"\n")
        if not isinstance(record, Header | End):
            counts.add(record)

    write(Header(version=VERSION))
    apps = await storage.list_apps()
    for app in apps:
        write(AppRecord(app.sdkappid, app.key, app.edition, list(app.admins), dict(app.limits),
                        app.created_at))
    write(ClockRecord(None, await storage.clock_offset()))
    for sdkappid, offset in sorted((await storage.app_clock_offsets()).items()):
        write(ClockRecord(sdkappid, offset))
    for app in apps:
        after = ""
        while True:
            page = await storage.list_accounts(app.sdkappid, after=after, limit=PAGE)
            for account in page:
                write(AccountRecord(app.sdkappid, account.user_id, account.nick, account.face_url,
                                    account.is_admin, account.created_at))
            if len(page) < PAGE:
                break
            after = page[-1].user_id
        after = ""
        while True:
            kicks = await storage.list_kicks(app.sdkappid, after=after, limit=PAGE)
            for user_id, kicked_at in kicks:
                write(KickRecord(app.sdkappid, user_id, kicked_at))
            if len(kicks) < PAGE:
                break
            after = kicks[-1][0]
        for rule in await storage.list_faults(app.sdkappid):
            write(FaultRuleRecord(app.sdkappid, json.loads(rule.spec), rule.remaining,
                                  rule.matched, rule.created_at))
    write(End(counts.records))
    return counts


# --- import: the one reader of state files ----------------------------------------------------


def _records(lines: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each non-empty line, decoded and checked for its shape. A line
    is read up to ``MAX_LINE`` bytes: a file without line breaks cannot fill the memory."""
    number = 0
    while line := lines.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise PortableError(f"line {number}: longer than {MAX_LINE} bytes: not a state file "
                                "written by `timserver export`")
        if not line.strip():
            continue
        try:
            yield number, _decode(line)
        except msgspec.ValidationError as exc:
            raise PortableError(f"line {number}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise PortableError(f"line {number}: not JSON ({exc})") from None


@dataclass
class _Checker:
    """What the first pass keeps: a few numbers per app, whatever the number of accounts."""

    apps: dict[int, tuple[str, ...]] = field(default_factory=dict)  # SDKAppID → admins
    last_user: dict[tuple[int, str], str] = field(default_factory=dict)  # (app, kind) → UserID
    counts: Counts = field(default_factory=Counts)

    def check(self, record: Any) -> None:
        if isinstance(record, AppRecord):
            self._app(record)
        elif isinstance(record, ClockRecord):
            if record.sdkappid is not None:
                self._known(record.sdkappid)
            try:
                check_offset(record.offset)
            except StateError as exc:
                raise PortableError(str(exc)) from None
        elif isinstance(record, AccountRecord | KickRecord):
            self._known(record.sdkappid)
            problem = userid_problem(record.user_id)
            if problem:
                raise PortableError(f"UserID {record.user_id!r} is invalid: {problem}")
            kind = "account" if isinstance(record, AccountRecord) else "kick"
            last = self.last_user.get((record.sdkappid, kind))
            if last is not None and record.user_id <= last:
                raise PortableError(f"{kind} {record.user_id!r} of app {record.sdkappid} comes "
                                    f"after {last!r}: a state file lists them once each, in "
                                    "UserID order")
            self.last_user[(record.sdkappid, kind)] = record.user_id
            if isinstance(record, AccountRecord):
                for name, value in (("Nick", record.nick), ("FaceUrl", record.face_url)):
                    if value is not None and (problem := profile_problem(name, value)):
                        raise PortableError(problem)
                if record.admin != (record.user_id in self.apps[record.sdkappid]):
                    raise PortableError(f"account {record.user_id!r}: 'admin' disagrees with the "
                                        f"admins of app {record.sdkappid}")
        elif isinstance(record, FaultRuleRecord):
            self._known(record.sdkappid)
            try:
                parse_rule(record.rule)
            except RuleError as exc:
                raise PortableError(f"fault rule: {exc}") from None
            if (record.remaining is not None and record.remaining < 0) or record.matched < 0:
                raise PortableError("fault rule: remaining and matched cannot be negative")
        self.counts.add(record)

    def _app(self, record: AppRecord) -> None:
        if record.sdkappid in self.apps:
            raise PortableError(f"app {record.sdkappid} appears twice")
        if self.counts.records != self.counts.apps:
            raise PortableError("app records come before every other record")
        admins = tuple(record.admins)
        try:
            app_rules.check_settings(sdkappid=record.sdkappid, key=record.key, admins=admins,
                                     edition=record.edition)
            for command, rate in record.limits.items():
                app_rules.check_limit(command, rate)
        except app_rules.AppConfigError as exc:
            raise PortableError(f"app {record.sdkappid}: {exc}") from None
        if len(set(admins)) != len(admins):
            raise PortableError(f"app {record.sdkappid}: an admin is listed twice")
        self.apps[record.sdkappid] = admins

    def _known(self, sdkappid: int) -> None:
        if sdkappid not in self.apps:
            raise PortableError(f"app {sdkappid} has no app record before this line")


def check_state(lines: IO[bytes]) -> Counts:
    """Read a whole state file and check every line; raises PortableError on the first problem
    (with its line number). Changes nothing."""
    checker = _Checker()
    records = _records(lines)
    first = next(records, None)
    if first is None:
        raise PortableError("the file is empty: not a state file written by `timserver export`")
    number, header = first
    if not isinstance(header, Header):
        raise PortableError(f"line {number}: the first record must be the header "
                            f'{{"type":"{FORMAT}","version":{VERSION}}}')
    if header.version > VERSION:
        raise PortableError(f"line {number}: version {header.version} was written by a newer "
                            f"timserver; this one reads version {VERSION}")
    if header.version < 1:
        raise PortableError(f"line {number}: there is no version {header.version}")
    end: End | None = None
    for number, record in records:
        if end is not None:
            raise PortableError(f"line {number}: a record after the end record")
        if isinstance(record, End):
            end = record
            if record.records != checker.counts.records:
                raise PortableError(f"line {number}: the end record counts {record.records} "
                                    f"records, the file holds {checker.counts.records}")
            continue
        if isinstance(record, Header):
            raise PortableError(f"line {number}: a second header")
        try:
            checker.check(record)
        except PortableError as exc:
            raise PortableError(f"line {number}: {exc}") from None
    if end is None:
        raise PortableError("the file ends without its end record: it was cut short "
                            "(an interrupted export or copy); nothing was imported")
    return checker.counts


async def apply_state(storage: Storage, lines: IO[bytes]) -> Counts:
    """Apply a state file that ``check_state`` accepted (read again from its start).

    Apps are created, or updated to the file's key, edition, admins and limits; the clock offsets
    set; accounts and kicks written as the file has them (other accounts of the database stay);
    each app's fault rules replaced by the file's. Accounts go in batches of ``PAGE``, each one
    transaction.
    """
    counts = Counts()
    faults: dict[int, list[FaultRecord]] = {}
    accounts: list[Account] = []
    kicks: list[tuple[str, int]] = []
    batch_app = 0

    async def flush() -> None:
        if accounts:
            await storage.restore_accounts(batch_app, accounts)
            accounts.clear()
        if kicks:
            await storage.restore_kicks(batch_app, kicks)
            kicks.clear()

    for _, record in _records(lines):
        if isinstance(record, Header | End):
            continue
        counts.add(record)
        if isinstance(record, AppRecord):
            await _put_app(storage, record)
            faults[record.sdkappid] = []
        elif isinstance(record, ClockRecord):
            if record.sdkappid is None:
                await storage.set_clock_offset(record.offset)
            else:
                await storage.set_app_clock_offset(record.sdkappid, record.offset)
        elif isinstance(record, FaultRuleRecord):
            faults[record.sdkappid].append(FaultRecord(
                0, record.sdkappid, spec_text(parse_rule(record.rule)), record.remaining,
                record.matched, record.created_at))
        else:
            if record.sdkappid != batch_app:
                await flush()
                batch_app = record.sdkappid
            if isinstance(record, AccountRecord):
                accounts.append(Account(record.user_id, record.nick, record.face_url,
                                        record.admin, record.created_at))
                if len(accounts) >= PAGE:
                    await flush()
            else:
                kicks.append((record.user_id, record.kicked_at))
                if len(kicks) >= PAGE:
                    await flush()
    await flush()
    for sdkappid, rules in faults.items():
        await storage.replace_faults(sdkappid, rules)
    return counts


async def _put_app(storage: Storage, record: AppRecord) -> None:
    app = App(record.sdkappid, record.key, record.edition, tuple(record.admins),
              dict(record.limits), record.created_at)
    try:
        await storage.create_app(app)
        return
    except AppExists:
        pass
    await storage.update_app(app.sdkappid, key=app.key, edition=app.edition, admins=app.admins)
    for command, rate in app.limits.items():
        await storage.update_app(app.sdkappid, limit=(command, rate))
