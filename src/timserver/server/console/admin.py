"""The admin extension endpoints: an app's accounts and journal, behind its admin's UserSig.

Import, delete and kick run the /v4 commands' own parser, rate limit and handler, so that the
console's buttons obey exactly the rules a REST call does.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from ...protocol.commands import BY_NAME, Command
from ...protocol.errors import TimError
from ...protocol.messages import fail_reasons
from ...service.presence import account_status
from ...storage import App, Device
from ..dispatch import MAX_BODY_BYTES
from ..hooks import Access, Endpoint, EndpointCall, ServerHandles
from ..journal import Journal
from .params import MAX_SMALL_BODY, int_param, text_param

MAX_PAGE = 200  # accounts per page


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

    return [
        Endpoint("/_timserver/accounts", {"GET": accounts_list}, Access.ADMIN),
        Endpoint("/_timserver/accounts/import", {"POST": accounts_import}, Access.ADMIN,
                 journal_as="multiaccount_import"),
        Endpoint("/_timserver/accounts/delete", {"POST": accounts_delete}, Access.ADMIN,
                 journal_as="account_delete"),
        Endpoint("/_timserver/accounts/kick", {"POST": accounts_kick}, Access.ADMIN,
                 journal_as="kick"),
        Endpoint("/_timserver/journal", {"GET": journal_for_app}, Access.ADMIN),
    ]
