"""The OpenAPI 3.1 document: the /v4 commands from the command table and its message structs,
the extension endpoints under /_timserver/ from the structs their plugins declare
(``hooks.Endpoint``: request, response, query; ``hooks.Operation`` per method). Built once the
server knows its plugins (``asgi.create_app``): the emulator's endpoints are in it only when the
emulator is on, the console page's only where the console is.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from .. import __version__
from ..protocol import messages
from ..protocol.commands import BY_NAME, COMMANDS, COMMON_ERRORS, QUERY_PARAMETERS, Command
from ..protocol.errors import CATALOGUE
from .access import TOKEN_HEADER
from .hooks import Access, Endpoint, Operation

_REF = "#/components/schemas/{name}"


def _aliases(cmd: Command) -> dict[str, str]:
    """Field → legacy alias, read from the request struct's annotations."""
    found = {}
    hints = typing.get_type_hints(cmd.request, include_extras=True)
    for name in cmd.request.__struct_fields__:
        for meta in getattr(hints[name], "__metadata__", ()):
            if isinstance(meta, msgspec.Meta) and meta.extra and "alias" in meta.extra:
                found[name] = meta.extra["alias"]
    return found


def _request_schema(cmd: Command, schema: dict[str, Any]) -> None:
    """Add what the structs cannot say: batch bounds, alternatives, legacy aliases."""
    for prop in schema["properties"].values():
        if prop.get("type") == "array":
            prop["minItems"], prop["maxItems"] = 1, cmd.max_items
    if cmd.exactly_one_of:
        schema["oneOf"] = [{"required": [name]} for name in cmd.exactly_one_of]
    for name, alias in _aliases(cmd).items():
        schema["properties"][alias] = {**schema["properties"][name], "deprecated": True,
                                       "description": f"Legacy name of {name} (older clients)."}
        schema["required"] = [r for r in schema["required"] if r != name]
        schema["anyOf"] = [{"required": [name]}, {"required": [alias]}]


#: Codes an extension endpoint may answer before or besides its handler's own.
EXTENSION_ERRORS = (60002, 60003, 60004, 60006, 60007, 60008, 60009, 60012, 60015, 70001, 70002,
                    70003, 70005, 70009, 70013, 70014, 70169, 70402, 70403, 70500)
_ENVELOPE_OK = {"type": "object", "required": ["ActionStatus", "ErrorInfo", "ErrorCode"],
                "properties": {"ActionStatus": {"type": "string", "enum": ["OK"]},
                               "ErrorInfo": {"type": "string"},
                               "ErrorCode": {"type": "integer", "enum": [0]}}}
_ENVELOPE_ANY = {"type": "object", "required": ["ActionStatus", "ErrorInfo", "ErrorCode"],
                 "properties": {"ActionStatus": {"type": "string", "enum": ["OK", "FAIL"]},
                                "ErrorInfo": {"type": "string"},
                                "ErrorCode": {"type": "integer"}}}
_CREDENTIALS = {
    Access.ADMIN: [("sdkappid", "The app's SDKAppID."),
                   ("identifier", "An admin of the app."),
                   ("usersig", "That admin's UserSig. Never logged nor stored.")],
    Access.SIGNED: [("sdkappid", "The app's SDKAppID."),
                    ("identifier", "The account itself, or an admin of the app."),
                    ("usersig", "That identifier's UserSig. Never logged nor stored.")],
}
_WHO = {
    Access.ADMIN: "Signed by an admin of the app, as a /v4 call (no random/contenttype); an app "
                  "only ever sees its own data.",
    Access.SIGNED: "Signed by the account itself with its own UserSig (checked as a /v4 "
                   "call's), or by an admin of the app.",
    Access.CONSOLE: "The web console's: answered only from the console's place (loopback "
                    "unless serve --console-bind); elsewhere like an unknown path (60009).",
    Access.CONSOLE_TOKEN: "The web console's, with the server's console token in the "
                          f"{TOKEN_HEADER} header; answered only from the console's place.",
}

#: One declared endpoint of a plugin: the plugin's name and the declaration.
Declared = tuple[str, Endpoint]


def openapi_document(endpoints: Sequence[Declared] = ()) -> dict[str, Any]:
    """The document of the /v4 commands and of ``endpoints`` (a server's plugins' own)."""
    operations = [(plugin, decl, method.upper(), decl.operation(method.upper()))
                  for plugin, decl in endpoints if decl.listed for method in decl.handlers]
    declared = {t for *_, op in operations for t in (op.request, op.response, op.query)
                if t is not None}
    types = [c.request for c in COMMANDS] + [c.response for c in COMMANDS]
    types.append(messages.ErrorResponse)
    types += sorted(declared - set(types), key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    components["ErrorResponse"]["properties"]["ActionStatus"]["enum"] = ["FAIL"]
    components["ErrorResponse"]["properties"]["ErrorCode"]["enum"] = sorted(CATALOGUE)
    params = [{"name": n, "in": "query", "required": True, "description": d,
               "schema": {"type": "string"}} for n, d in QUERY_PARAMETERS]
    paths: dict[str, Any] = {}
    for cmd in COMMANDS:
        _request_schema(cmd, components[cmd.request.__name__])
        codes = sorted(set(COMMON_ERRORS) | set(cmd.errors))
        paths[cmd.path] = {"post": {
            "operationId": cmd.name,
            "summary": cmd.summary,
            "description": (f"Rate limit: {cmd.default_rate} calls/s per app by default; at "
                            f"most {cmd.max_items} item(s) per call. ErrorCodes: "
                            + ", ".join(f"{c} ({CATALOGUE[c].name})" for c in codes)),
            "tags": [cmd.service],
            "parameters": params,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": _REF.format(name=cmd.request.__name__)},
                "example": cmd.sample}}},
            "responses": {"200": {
                "description": "Always HTTP 200; success or failure is in ActionStatus and "
                               "ErrorCode.",
                # anyOf: a failure (three fields) is also a valid account_import/kick answer
                "content": {"application/json": {"schema": {"anyOf": [
                    {"$ref": _REF.format(name=cmd.response.__name__)},
                    {"$ref": _REF.format(name="ErrorResponse")}]}}}}},
        }}
    for plugin, decl, method, op in operations:
        paths.setdefault(decl.path, {})[method.lower()] = _extension(plugin, decl, method, op,
                                                                    components)
    bodies = {t for *_, op in operations for t in (op.request, op.response)}
    for *_, op in operations:  # a query struct's fields are parameters, not a schema
        if op.query is not None and op.query not in bodies:
            components.pop(op.query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "timserver: Tencent Cloud IM account REST API",
                 "version": __version__,
                 "description": "Wire-compatible with Tencent Cloud IM's im_open_login_svc, "
                                "openim and profile commands (/v4/...); timserver's own "
                                "endpoints under /_timserver/ (the console's admin endpoints, "
                                "third-party callbacks and, with the emulator on, its "
                                "controls and simulated logins)."},
        "paths": paths,
        "components": {"schemas": components},
    }


def _extension(plugin: str, decl: Endpoint, method: str, op: Operation,
               components: dict[str, Any]) -> dict[str, Any]:
    """One method of an extension endpoint, from its declared structs."""
    parameters = [{"name": n, "in": "query", "required": True, "description": d,
                   "schema": {"type": "string"}} for n, d in _CREDENTIALS.get(decl.access, ())]
    if decl.access is Access.CONSOLE_TOKEN:
        parameters.append({"name": TOKEN_HEADER, "in": "header", "required": True,
                           "description": "The console token `timserver serve` printed.",
                           "schema": {"type": "string"}})
    if op.query is not None:
        schema = components[op.query.__name__]
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "description": prop.get("description", ""),
                               "schema": {k: v for k, v in prop.items() if k != "description"}})
    answer: dict[str, Any] = (
        {"anyOf": [{"allOf": [_ENVELOPE_OK, {"$ref": _REF.format(name=op.response.__name__)}]},
                   {"$ref": _REF.format(name="ErrorResponse")}]}
        if op.response is not None else _ENVELOPE_ANY)
    content: dict[str, Any] = {"application/json": {"schema": answer}}
    if op.download is not None:
        content[op.download] = {"schema": {"type": "string"}}
    codes = ", ".join(f"{c} ({CATALOGUE[c].name})" for c in EXTENSION_ERRORS if c in CATALOGUE)
    summary = op.summary or decl.summary or decl.path
    found: dict[str, Any] = {
        "operationId": "timserver" + decl.path.removeprefix("/_timserver").replace("/", "_")
                       + ("" if len(decl.handlers) == 1 else f"_{method.lower()}"),
        "summary": summary,
        "description": " ".join(filter(None, (
            op.description, _WHO[decl.access],
            "Always HTTP 200 with the envelope; on success, the fields of the answer below"
            + (f" (or a download: {op.download})" if op.download else "") + ".",
            f"ErrorCodes include: {codes}."))),
        "tags": [f"timserver {plugin}"],
        "parameters": parameters,
        "responses": {"200": {"description": "The envelope; on success, the fields below.",
                              "content": content}},
    }
    if op.request is not None:
        body: dict[str, Any] = {"schema": {"$ref": _REF.format(name=op.request.__name__)}}
        if decl.journal_as in BY_NAME:  # the console's import, delete, kick: the command's body
            body["example"] = BY_NAME[decl.journal_as].sample
        found["requestBody"] = {"required": True, "content": {"application/json": body}}
    if op.resets:
        found["x-timserver-resets"] = True
    return found
