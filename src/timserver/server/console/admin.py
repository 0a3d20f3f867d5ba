"""The admin extension endpoints: an app's accounts and journal, behind its admin's UserSig.

Import, delete and kick run the /v4 commands' own parser, rate limit and handler, so that the
console's buttons obey exactly the rules a REST call does.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.responses import Response

from ...protocol import messages as m
from ...protocol.commands import BY_NAME, Command
from ...protocol.errors import TimError
from ...protocol.messages import fail_reasons
from ...service.presence import account_status
from ...storage import App, Device
from ..dispatch import MAX_BODY_BYTES
from ..hooks import Access, Endpoint, EndpointCall, Operation, ServerHandles
from ..journal import Entry, Journal
from .params import MAX_SMALL_BODY, int_param, text_param

MAX_PAGE = 200  # accounts per page


# --- what the endpoints take and answer, for the OpenAPI document (server/openapi.py) ----------
# Import, delete and kick take their /v4 command's own request struct.


class AccountsQuery(Struct, kw_only=True):
    prefix: Annotated[str, Meta(description="Only UserIDs that start with this (byte-exact).",
                                max_length=128)] = ""
    after: Annotated[str, Meta(description="The cursor: list UserIDs after this one.",
                               max_length=128)] = ""
    limit: Annotated[int, Meta(description=f"Accounts per page, 1 to {MAX_PAGE} (default 50).",
                               ge=1, le=MAX_PAGE)] = 50


class DeviceView(Struct, kw_only=True):
    Platform: str
    Status: Annotated[str, Meta(extra_json_schema={"enum": ["Online", "PushOnline"]})]
    InstId: int
    LoginAt: Annotated[float, Meta(description="Unix seconds, on the app's clock.")]


class AccountView(Struct, kw_only=True):
    UserID: str
    Nick: str | None
    FaceUrl: str | None
    IsAdmin: bool
    CreatedAt: Annotated[float, Meta(description="Unix seconds.")]
    Status: Annotated[str, Meta(description="The login state, as openim/query_online_status "
                                            "says.",
                                extra_json_schema={"enum": ["Online", "PushOnline",
                                                            "Offline"]})]
    Devices: Annotated[list[DeviceView], Meta(description="The devices that are not Offline.")]


class AccountsPage(Struct, kw_only=True):
    SDKAppID: int
    Total: Annotated[int, Meta(description="Every account, admins included.")]
    Accounts: list[AccountView]
    Next: Annotated[str, Meta(description="The cursor of the next page (empty on the last).")]


class ImportFailure(Struct, kw_only=True):
    UserID: str
    Reason: Annotated[str, Meta(description="Why, as the service decided.")]


class ImportDone(Struct, kw_only=True):
    Imported: Annotated[int, Meta(description="Accounts created or updated.")]
    FailAccounts: list[str]
    Failures: list[ImportFailure]


class DeleteDone(Struct, kw_only=True):
    ResultItem: list[m.DeleteResultItem]


class KickDone(Struct, kw_only=True):
    """Nothing beyond the envelope."""


class JournalQuery(Struct, kw_only=True):
    limit: Annotated[int, Meta(description="The newest N entries (default 200).", ge=1)] = 200
    after: Annotated[int, Meta(description="Only entries with Seq above this.",
                               ge=0)] | UnsetType = UNSET
    format: Annotated[str, Meta(description="json (default) or ndjson (a download, one entry "
                                            "a line).",
                                extra_json_schema={"enum": ["json", "ndjson"]})] = "json"
    command: Annotated[str, Meta(description="Only this command's calls.")] | UnsetType = UNSET
    code: Annotated[int, Meta(description="Only calls answered with this "
                                          "ErrorCode.")] | UnsetType = UNSET
    user_id: Annotated[str, Meta(description="Only calls whose body names this UserID "
                                             "(serve --record-bodies only).")] | UnsetType = UNSET


class JournalPage(Struct, kw_only=True):
    Worker: int
    Workers: int
    Capacity: int
    Last: int
    Entries: list[Entry]


def journal_answer(journal: Journal, params: dict[str, str],
                   sdkappid: int | None) -> dict[str, Any] | Response:
    """The journal's entries (all apps' when ``sdkappid`` is None), as JSON or NDJSON."""
    limit = int_param(params, "limit", 200, 1, max(journal.size, 1))
    after = int_param(params, "after", 0, 0, 2**63 - 1)
    fmt = params.get("format", "json")
    if fmt not in ("json", "ndjson"):
        raise TimError(70402, "Invalid parameters: format must be json or ndjson.")
    # filters (the console's journal page): the command, the ErrorCode, a UserID the request
    # names (recorded with serve --record-bodies only) and, over every app, one app
    command = text_param(params, "command") or None
    code = params.get("code", "")
    if code and not (code.lstrip("-").isascii() and code.lstrip("-").isdigit()
                     and len(code) <= 12):
        raise TimError(70402, "Invalid parameters: code must be an integer.")
    user_id = text_param(params, "user_id") or None
    if sdkappid is None and params.get("app"):
        sdkappid = int_param(params, "app", 0, 0, 2**32 - 1)
    entries = journal.entries(sdkappid=sdkappid, after=after, limit=limit, command=command,
                              code=int(code) if code else None, user_id=user_id)
    if fmt == "ndjson":
        name = f"timserver-journal-{sdkappid if sdkappid is not None else 'all'}.ndjson"
        return Response(journal.ndjson(entries), headers={
            "Content-Type": "application/x-ndjson; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return {"Worker": journal.pid, "Workers": journal.rings_read, "Capacity": journal.size,
            "Last": journal.last_seq, "Entries": msgspec.to_builtins(entries)}


def login_state(devices: list[tuple[Device, str]]) -> dict[str, Any]:
    """An account's ``Status`` (Online, PushOnline or Offline, as query_online_status says) and
    its ``Devices`` that are not Offline."""
    return {"Status": account_status([s for _, s in devices]),
            "Devices": [{"Platform": d.platform, "Status": s, "InstId": d.inst_id,
                         "LoginAt": round(d.login_at, 3)} for d, s in devices]}


def admin_endpoints(server: ServerHandles, journal: Journal) -> list[Endpoint]:
    storage = server.storage

    async def run(cmd: Command, app: App, body: dict[str, Any]) -> Any:
        """A /v4 command's own rules: its parser, the app's rate limit, its handler."""
        await server.check_rate(app, cmd)
        return await server.run(cmd, app, cmd.parse(body))

    def app_of(call: EndpointCall) -> App:
        assert call.app is not None  # Access.ADMIN
        return call.app

    async def accounts_list(call: EndpointCall) -> dict[str, Any]:
        app = app_of(call)
        prefix = text_param(call.params, "prefix")
        after = text_param(call.params, "after")
        limit = int_param(call.params, "limit", 50, 1, MAX_PAGE)
        page = await storage.list_accounts(app.sdkappid, prefix=prefix, after=after,
                                           limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        total = await storage.count_accounts(app.sdkappid) + len(app.admins)
        # each account's login state: its devices that are not Offline (read in production
        # too; only the emulator's /_timserver/login|logout|disconnect change it)
        online = await server.presence.status(app, [a.user_id for a in page]) if page else {}
        return {
            "SDKAppID": app.sdkappid, "Total": total,
            "Accounts": [{"UserID": a.user_id, "Nick": a.nick, "FaceUrl": a.face_url,
                          "IsAdmin": a.is_admin, "CreatedAt": round(a.created_at, 3),
                          **login_state(online.get(a.user_id, []))}
                         for a in page],
            "Next": page[-1].user_id if more and page else "",
        }

    async def accounts_import(call: EndpointCall) -> dict[str, Any]:
        app = app_of(call)
        body = await call.json(MAX_BODY_BYTES)
        cmd = BY_NAME["multiaccount_import"]
        await server.check_rate(app, cmd)  # as run() does: the rate limit, then the body
        parsed = cmd.parse(body)
        resp = await server.run(cmd, app, parsed)
        reasons = fail_reasons(resp)  # why each failed: the service says
        failures = [{"UserID": uid, "Reason": reasons.get(uid, "")} for uid in resp.FailAccounts]
        imported = len(set(cmd.user_ids_of(parsed)) - set(resp.FailAccounts))
        return {"Imported": imported, "FailAccounts": resp.FailAccounts, "Failures": failures}

    async def accounts_delete(call: EndpointCall) -> dict[str, Any]:
        resp = await run(BY_NAME["account_delete"], app_of(call), await call.json(MAX_BODY_BYTES))
        return {"ResultItem": msgspec.to_builtins(resp.ResultItem)}

    async def accounts_kick(call: EndpointCall) -> dict[str, Any]:
        await run(BY_NAME["kick"], app_of(call), await call.json(MAX_SMALL_BODY))
        return {}

    async def journal_for_app(call: EndpointCall) -> dict[str, Any] | Response:
        return journal_answer(journal, call.params, app_of(call).sdkappid)

    journal_doc = Operation(
        "Recent answered /v4 requests of the app", query=JournalQuery, response=JournalPage,
        download="application/x-ndjson",
        description="The request journal (with --workers N, every worker's calls): time, "
                    "command, ErrorCode, latency and body sizes of the app's recent calls, "
                    "including the console's imports, deletes and kicks, oldest first. No "
                    "UserSig or query string is ever recorded; bodies only with serve "
                    "--record-bodies.")
    return [
        Endpoint("/_timserver/accounts", {"GET": accounts_list}, Access.ADMIN,
                 summary="List the app's accounts", query=AccountsQuery, response=AccountsPage,
                 description="In UserID order, a page at a time, each with its login state."),
        Endpoint("/_timserver/accounts/import", {"POST": accounts_import}, Access.ADMIN,
                 journal_as="multiaccount_import", summary="Import up to 100 accounts",
                 request=m.MultiAccountImportRequest, response=ImportDone,
                 description="The body, rules, rate limit and FailAccounts of "
                             "multiaccount_import, and why each account failed."),
        Endpoint("/_timserver/accounts/delete", {"POST": accounts_delete}, Access.ADMIN,
                 journal_as="account_delete", summary="Delete up to 100 accounts",
                 request=m.AccountDeleteRequest, response=DeleteDone,
                 description="The body, rules, rate limit and ResultItem of account_delete."),
        Endpoint("/_timserver/accounts/kick", {"POST": accounts_kick}, Access.ADMIN,
                 journal_as="kick", summary="Invalidate an account's UserSigs",
                 request=m.KickRequest, response=KickDone,
                 description="The body, rules and rate limit of kick."),
        Endpoint("/_timserver/journal", {"GET": journal_for_app}, Access.ADMIN,
                 docs={"GET": journal_doc}),
    ]
