"""OpenAPI description of the admin extension endpoints under ``/_timserver/``.

``server/openapi.py`` adds these paths to the document. The console's own endpoints
(``/_timserver/console/...``, loopback only) are private to the page and described in
docs/console.md instead.
"""

from __future__ import annotations

from typing import Any

from ...protocol.errors import CATALOGUE

_AUTH = [
    ("sdkappid", "The app's SDKAppID."),
    ("identifier", "An admin of the app."),
    ("usersig", "That admin's UserSig. Never logged nor stored."),
]
_ENVELOPE = {
    "ActionStatus": {"type": "string", "enum": ["OK", "FAIL"]},
    "ErrorCode": {"type": "integer"},
    "ErrorInfo": {"type": "string"},
}
_COMMON = (60002, 60003, 60004, 60006, 60007, 60008, 60012, 60015, 70001, 70002, 70003, 70005,
           70009, 70013, 70014, 70169, 70402, 70403, 70500)
_USERID = {"type": "string", "maxLength": 32}


def _op(op_id: str, summary: str, description: str, result: dict[str, Any],
        params: list[tuple[str, str, dict[str, Any]]] = (), body: dict[str, Any] | None = None,
        example: Any = None) -> dict[str, Any]:
    parameters = [{"name": n, "in": "query", "required": True, "description": d,
                   "schema": {"type": "string"}} for n, d in _AUTH]
    parameters += [{"name": n, "in": "query", "required": False, "description": d, "schema": s}
                   for n, d, s in params]
    codes = ", ".join(f"{c} ({CATALOGUE[c].name})" for c in _COMMON if c in CATALOGUE)
    op: dict[str, Any] = {
        "operationId": op_id, "summary": summary, "tags": ["timserver extensions"],
        "description": (f"{description} Admin auth as for /v4 calls (no random/contenttype); "
                        "an app only ever sees its own data. Always HTTP 200 with the envelope; "
                        f"ErrorCodes include: {codes}."),
        "parameters": parameters,
        "responses": {"200": {"description": "The envelope; on success, the fields below.",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "required": list(_ENVELOPE),
                                  "properties": {**_ENVELOPE, **result}}}}}},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body, **({"example": example} if example is not None else {})}}}
    return op


def extension_paths() -> dict[str, Any]:
    account = {"type": "object", "properties": {
        "UserID": {"type": "string"}, "Nick": {"type": ["string", "null"]},
        "FaceUrl": {"type": ["string", "null"]}, "IsAdmin": {"type": "boolean"},
        "CreatedAt": {"type": "number", "description": "Unix seconds."},
        "Status": {"type": "string", "enum": ["Online", "PushOnline", "Offline"],
                   "description": "The login state, as openim/query_online_status says."},
        "Devices": {"type": "array", "description": "The devices that are not Offline.",
                    "items": {"type": "object", "properties": {
                        "Platform": {"type": "string"},
                        "Status": {"type": "string", "enum": ["Online", "PushOnline"]},
                        "InstId": {"type": "integer"},
                        "LoginAt": {"type": "number",
                                    "description": "Unix seconds, on the app's clock."}}}}}}
    entry = {"type": "object", "properties": {
        "Id": {"type": "string", "description": "Worker pid and sequence number."},
        "Seq": {"type": "integer"}, "Time": {"type": "number"}, "Method": {"type": "string"},
        "Path": {"type": "string"}, "Command": {"type": ["string", "null"]},
        "SDKAppID": {"type": ["integer", "null"]}, "Identifier": {"type": ["string", "null"]},
        "ErrorCode": {"type": "integer"}, "LatencyMs": {"type": "number"},
        "RequestBytes": {"type": "integer"}, "ResponseBytes": {"type": "integer"}}}
    item = {"type": "object", "required": ["UserID"], "properties": {
        "UserID": _USERID, "Nick": {"type": "string"}, "FaceUrl": {"type": "string"}}}
    return {
        "/_timserver/accounts": {"get": _op(
            "timserver_list_accounts", "List the app's accounts",
            "Accounts in UserID order, a page at a time; Next is the cursor of the next page "
            "(empty on the last one). Total counts every account, admins included. Each "
            "account carries its login state (Status, Devices).",
            {"SDKAppID": {"type": "integer"}, "Total": {"type": "integer"},
             "Accounts": {"type": "array", "items": account}, "Next": {"type": "string"}},
            params=[("prefix", "Only UserIDs that start with this (byte-exact).",
                     {"type": "string", "maxLength": 128}),
                    ("after", "The cursor: list UserIDs after this one.",
                     {"type": "string", "maxLength": 128}),
                    ("limit", "Accounts per page, 1 to 200 (default 50).",
                     {"type": "integer", "minimum": 1, "maximum": 200})])},
        "/_timserver/accounts/import": {"post": _op(
            "timserver_import_accounts", "Import up to 100 accounts",
            "The body, rules, rate limit and per-account results of multiaccount_import, plus "
            "Imported (accounts created or updated) and Failures (why each account failed).",
            {"Imported": {"type": "integer"},
             "FailAccounts": {"type": "array", "items": {"type": "string"}},
             "Failures": {"type": "array", "items": {"type": "object", "properties": {
                 "UserID": {"type": "string"}, "Reason": {"type": "string"}}}}},
            body={"type": "object", "properties": {
                "AccountList": {"type": "array", "minItems": 1, "maxItems": 100, "items": item},
                "Accounts": {"type": "array", "minItems": 1, "maxItems": 100, "items": _USERID}},
                "oneOf": [{"required": ["AccountList"]}, {"required": ["Accounts"]}]},
            example={"AccountList": [{"UserID": "alice", "Nick": "Alice"}]})},
        "/_timserver/accounts/delete": {"post": _op(
            "timserver_delete_accounts", "Delete up to 100 accounts",
            "The body, rules, rate limit and ResultItem of account_delete.",
            {"ResultItem": {"type": "array", "items": {"type": "object", "properties": {
                "ResultCode": {"type": "integer"}, "ResultInfo": {"type": "string"},
                "UserID": {"type": "string"}}}}},
            body={"type": "object", "required": ["DeleteItem"], "properties": {
                "DeleteItem": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
                    "type": "object", "required": ["UserID"],
                    "properties": {"UserID": _USERID}}}}},
            example={"DeleteItem": [{"UserID": "alice"}]})},
        "/_timserver/accounts/kick": {"post": _op(
            "timserver_kick_account", "Invalidate an account's UserSigs",
            "The body, rules and rate limit of kick.", {},
            body={"type": "object", "required": ["UserID"], "properties": {"UserID": _USERID}},
            example={"UserID": "alice"})},
        "/_timserver/journal": {"get": _with_ndjson(_op(
            "timserver_journal", "Recent answered /v4 requests of the app",
            "The request journal (with --workers N, every worker's calls): time, command, "
            "ErrorCode, latency and body sizes of the app's recent calls, including the "
            "console's imports, deletes and kicks, oldest first. No UserSig or query string is "
            "ever recorded; bodies only with serve --record-bodies. format=ndjson exports one "
            "JSON object per line (application/x-ndjson).",
            {"Worker": {"type": "integer"}, "Workers": {"type": "integer"},
             "Capacity": {"type": "integer"},
             "Last": {"type": "integer"}, "Entries": {"type": "array", "items": entry}},
            params=[("limit", "The newest N entries (default 200).",
                     {"type": "integer", "minimum": 1}),
                    ("after", "Only entries with Seq above this.",
                     {"type": "integer", "minimum": 0}),
                    ("format", "json (default) or ndjson.",
                     {"type": "string", "enum": ["json", "ndjson"]}),
                    ("command", "Only this command's calls.", {"type": "string"}),
                    ("code", "Only calls answered with this ErrorCode.", {"type": "integer"}),
                    ("user_id", "Only calls whose body names this UserID (recorded with "
                                "serve --record-bodies only).", {"type": "string"})]))},
    }


def _with_ndjson(op: dict[str, Any]) -> dict[str, Any]:
    """format=ndjson answers one journal entry per line (a download), not the envelope."""
    op["responses"]["200"]["content"]["application/x-ndjson"] = {"schema": {"type": "string"}}
    return op
