"""The OpenAPI document is valid, complete, and derived from the command table."""

from __future__ import annotations

import jsonschema
from openapi_spec_validator import validate

from timserver.protocol.commands import COMMANDS


async def test_openapi_document_is_valid_and_lists_every_command(client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert {p for p in doc["paths"] if p.startswith("/v4/")} == {c.path for c in COMMANDS}
    assert all(p.startswith(("/v4/", "/_timserver/")) for p in doc["paths"])
    for cmd in COMMANDS:
        op = doc["paths"][cmd.path]["post"]
        assert [p["name"] for p in op["parameters"]] == ["sdkappid", "identifier", "usersig",
                                                          "random", "contenttype"]
        assert str(cmd.default_rate) in op["description"]


def test_sample_bodies_match_their_request_schemas() -> None:
    from timserver.server.openapi import openapi_document

    doc = openapi_document()
    for cmd in COMMANDS:
        # the request schema, with the components beside it so that its $refs resolve
        schema = {**doc["components"]["schemas"][cmd.request.__name__],
                  "components": doc["components"]}
        jsonschema.validate(cmd.sample, schema)
        parsed = cmd.parse(cmd.sample)  # and the server's parser takes them too
        assert type(parsed) is cmd.request


def test_batch_bounds_come_from_the_declaration() -> None:
    from timserver.server.openapi import openapi_document

    schemas = openapi_document()["components"]["schemas"]
    check = schemas["AccountCheckRequest"]["properties"]["CheckItem"]
    assert (check["minItems"], check["maxItems"]) == (1, 100)
    multi = schemas["MultiAccountImportRequest"]
    assert multi["oneOf"] == [{"required": ["Accounts"]}, {"required": ["AccountList"]}]
