"""Schemathesis against /openapi.json: every operation, on each backend.

Each operation is fuzzed three ways: schema-valid requests with a valid admin signature (so the
generated bodies reach the command's rules and the database), schema-violating requests with a
valid signature (negative mode: wrong types, missing fields, extra items), and requests whose
query parameters are generated too (the authentication steps). Every answer must conform to the
document (status, Content-Type, headers, response schema) and be Tencent's envelope with a
catalogue code, never a 70500; at the end the server's log holds no traceback and it still
serves.

Operations marked ``x-timserver-resets`` (adding fault rules, moving the app's clock, a reset)
are left out: they change how every later call of the app is answered (a rule that drops
connections, a clock a year ahead), so the answers after them would say nothing about the
server's robustness; their inputs are fuzzed by the emulator's own tests.

Size: TIMSERVER_FUZZ_EXAMPLES / 200 examples per operation and way (at least 5).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from reliability_support import (
    FUZZ_EXAMPLES,
    Server,
    assert_alive_and_serving,
    check_envelope,
    create_apps,
    log_defects,
    record,
    sign,
)
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

pytestmark = pytest.mark.slow

CHECKS = [schemathesis.checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_headers_conformance,
          openapi_checks.response_schema_conformance]
ADMIN = "rel_admin_q7"  # no generator guesses it, so a fuzzed kick never locks the admin out


def test_every_operation_of_the_openapi_document(backend_db: str, tmp_path: Path) -> None:
    (app,) = create_apps(backend_db, [{"sdkappid": 1400007001, "admins": [ADMIN]}])
    server = Server(backend_db, tmp_path)
    try:
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        operations = [op for op in (result.ok() for result in schema.get_all_operations())
                      if not op.definition.raw.get("x-timserver-resets")]
        assert len(operations) >= 10, "the five commands and the /_timserver/ endpoints"
        per_way = max(5, FUZZ_EXAMPLES // 200)
        session = requests.Session()
        counts: dict[str, int] = {}
        codes: dict[int, int] = {}

        def fuzzer(strategy, label: str):
            @given(case=strategy)
            @settings(max_examples=per_way, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.base_url, session=session, timeout=30)
                counts[label] = counts.get(label, 0) + 1
                content_type = response.headers.get("content-type", [""])[0]
                if "ndjson" in content_type:  # the journal's documented export
                    for line in response.content.splitlines():
                        assert isinstance(json.loads(line), dict)
                else:
                    data = check_envelope(response.status_code, content_type, response.content)
                    codes[data["ErrorCode"]] = codes.get(data["ErrorCode"], 0) + 1
                case.validate_response(response, checks=CHECKS)
            return fuzz

        for operation in operations:
            names = {p.name for p in operation.query}
            auth = {"sdkappid": str(app.sdkappid), "identifier": ADMIN, "usersig": sign(app)}
            if "random" in names:
                auth |= {"random": "7", "contenttype": "json"}
            # schema-valid with a valid signature; schema-violating with it; any query
            ways = [(GenerationMode.POSITIVE, auth), (GenerationMode.NEGATIVE, auth),
                    (GenerationMode.NEGATIVE, None)]
            for mode, query in ways:
                if (mode is GenerationMode.NEGATIVE and query and names <= set(query)
                        and not list(operation.body)):
                    continue  # nothing but the signature to violate (GET /_timserver/clock)
                kwargs = {"query": query} if query else {}
                fuzzer(operation.as_strategy(generation_mode=mode, **kwargs), operation.label)()

        total = sum(counts.values())
        assert len(counts) == len(operations), "every operation was called"
        assert codes.get(0, 0) > 0, "some generated requests were served, not only refused"
        assert_alive_and_serving(server, app)
        assert log_defects(server.log()) == []
        record(f"schemathesis[{backend_db.split(':')[0]}]", requests=total,
               operations=len(operations), codes=dict(sorted(codes.items())))
    finally:
        server.stop()
