"""The OpenAPI 3.1 document, derived from the command table and its message structs."""

from __future__ import annotations

import typing
from typing import Any

import msgspec

from .. import __version__
from ..protocol import messages
from ..protocol.commands import COMMANDS, COMMON_ERRORS, QUERY_PARAMETERS, Command
from ..protocol.errors import CATALOGUE
from .console.openapi import extension_paths

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


def openapi_document() -> dict[str, Any]:
    types = [c.request for c in COMMANDS] + [c.response for c in COMMANDS]
    types.append(messages.ErrorResponse)
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
    paths.update(extension_paths())  # /_timserver/ admin endpoints (server/console/)
    return {
        "openapi": "3.1.0",
        "info": {"title": "timserver: Tencent Cloud IM account REST API",
                 "version": __version__,
                 "description": "Wire-compatible with Tencent Cloud IM's im_open_login_svc."},
        "paths": paths,
        "components": {"schemas": components},
    }
