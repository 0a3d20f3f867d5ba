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


# --- the extension endpoints: generated from the structs their plugins declare ------------------

EMULATOR_PATHS = {"/_timserver/faults", "/_timserver/faults/clear", "/_timserver/reset",
                  "/_timserver/clock", "/_timserver/calls", "/_timserver/calls/clear",
                  "/_timserver/login", "/_timserver/logout", "/_timserver/disconnect"}
ALWAYS_PATHS = {"/_timserver/accounts", "/_timserver/accounts/import",
                "/_timserver/accounts/delete", "/_timserver/accounts/kick", "/_timserver/journal",
                "/_timserver/callbacks", "/_timserver/callbacks/clear"}


def _document(tmp_path, **settings):
    from timserver.server.asgi import Settings
    from timserver.wiring import make_app

    front = make_app(Settings(db=f"sqlite:///{tmp_path / 'openapi.db'}", **settings))
    return front.state.pipeline, front.app


async def _served_document(tmp_path, **settings) -> dict:
    import httpx

    _, starlette_app = _document(tmp_path, **settings)
    transport = httpx.ASGITransport(app=starlette_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://timserver") as c:
        return (await c.get("/openapi.json")).json()


async def test_the_emulators_endpoints_are_there_with_the_emulator_on(tmp_path) -> None:
    doc = await _served_document(tmp_path)
    validate(doc)
    extension = {p for p in doc["paths"] if p.startswith("/_timserver/")}
    assert extension == EMULATOR_PATHS | ALWAYS_PATHS
    assert set(doc["paths"]["/_timserver/faults"]) == {"get", "post"}
    assert doc["paths"]["/_timserver/login"]["post"]["tags"] == ["timserver emulator"]
    assert doc["paths"]["/_timserver/callbacks"]["get"]["tags"] == ["timserver callbacks"]
    assert doc["paths"]["/_timserver/accounts"]["get"]["tags"] == ["timserver console"]


async def test_the_emulators_endpoints_vanish_with_the_emulator_off(tmp_path) -> None:
    doc = await _served_document(tmp_path, emulator=False)
    validate(doc)
    extension = {p for p in doc["paths"] if p.startswith("/_timserver/")}
    assert extension == ALWAYS_PATHS
    assert {p for p in doc["paths"] if p.startswith("/v4/")} == {c.path for c in COMMANDS}


def test_every_listed_endpoint_of_the_server_is_in_the_document_from_its_structs(tmp_path) -> None:
    from timserver.server.openapi import openapi_document

    pipeline, _ = _document(tmp_path)
    doc = openapi_document(pipeline.declared)
    schemas = doc["components"]["schemas"]
    listed = [(name, decl) for name, decl in pipeline.declared if decl.listed]
    assert {decl.path for _, decl in listed} == EMULATOR_PATHS | ALWAYS_PATHS
    assert all(decl.path.startswith("/_timserver/console/")
               for _, decl in pipeline.declared if not decl.listed)
    for _, decl in listed:
        for method in decl.handlers:
            op = decl.operation(method)
            found = doc["paths"][decl.path][method.lower()]
            assert op.response is not None and op.summary, (decl.path, method)
            assert found["summary"] == op.summary
            ok = found["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"][0]
            assert ok["allOf"][1]["$ref"].endswith("/" + op.response.__name__)
            assert op.response.__name__ in schemas
            if method == "POST":
                assert op.request is not None, decl.path
                ref = found["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/" + op.request.__name__)
            names = [p["name"] for p in found["parameters"]]
            assert names[:3] == ["sdkappid", "identifier", "usersig"]
            if op.query is not None:
                assert set(names[3:]) == set(op.query.__struct_fields__)
    # the calls that change how later calls are answered are marked (the fuzz leaves them out)
    resets = {(p, m) for p, ops in doc["paths"].items() for m, o in ops.items()
              if o.get("x-timserver-resets")}
    assert resets == {("/_timserver/faults", "post"), ("/_timserver/clock", "post"),
                      ("/_timserver/reset", "post")}
    # the console's import takes multiaccount_import's own body schema (bounds, oneOf)
    imp = doc["paths"]["/_timserver/accounts/import"]["post"]["requestBody"]
    assert imp["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MultiAccountImportRequest")


async def test_the_answers_of_the_extension_endpoints_match_their_declared_structs(
        tmp_path) -> None:
    """Real answers decode into the structs the document is made of."""
    import httpx
    import msgspec
    from support import make_app, query

    pipeline, starlette_app = _document(tmp_path, record_bodies=True)
    declared = {(d.path, m): d.operation(m) for _, d in pipeline.declared for m in d.handlers}
    async with starlette_app.router.lifespan_context(starlette_app):
        app = await make_app(starlette_app)
        q = {k: v for k, v in query(app).items() if k in ("sdkappid", "identifier", "usersig")}
        transport = httpx.ASGITransport(app=starlette_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://timserver") as c:
            calls = [
                ("POST", "/_timserver/accounts/import", {"AccountList": [{"UserID": "amy"},
                                                                         {"UserID": ""}]}),
                ("GET", "/_timserver/accounts", None),
                ("POST", "/_timserver/login", {"UserID": "amy", "Platform": "iPhone"}),
                ("POST", "/_timserver/login", {"UserID": "amy", "Platform": "Android"}),
                ("POST", "/_timserver/disconnect", {"UserID": "amy"}),
                ("POST", "/_timserver/logout", {"UserID": "amy", "Platform": "iPhone"}),
                ("POST", "/_timserver/faults", {"Command": "kick", "Code": 70500, "Times": 1}),
                ("GET", "/_timserver/faults", None),
                ("POST", "/_timserver/faults/clear", {}),
                ("GET", "/_timserver/clock", None),
                ("POST", "/_timserver/clock", {"Advance": 5}),
                ("GET", "/_timserver/calls", None),
                ("GET", "/_timserver/journal", None),
                ("GET", "/_timserver/callbacks", None),
                ("POST", "/_timserver/callbacks/clear", {}),
                ("POST", "/_timserver/calls/clear", {}),
                ("POST", "/_timserver/accounts/kick", {"UserID": "amy"}),
                ("POST", "/_timserver/accounts/delete", {"DeleteItem": [{"UserID": "amy"}]}),
                ("POST", "/_timserver/reset", {"Faults": True, "Clock": True, "Kicks": True}),
            ]
            for method, path, body in calls:
                answer = (await c.request(method, path, params=q, json=body)).json()
                assert answer["ErrorCode"] == 0, (path, answer)
                fields = {k: v for k, v in answer.items()
                          if k not in ("ActionStatus", "ErrorInfo", "ErrorCode")}
                op = declared[(path, method)]
                msgspec.convert(fields, type=op.response, strict=True)  # raises if it differs
                if body is not None:
                    msgspec.convert(body, type=op.request, strict=True)
