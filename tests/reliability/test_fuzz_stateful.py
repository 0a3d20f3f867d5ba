"""Stateful fuzzing: a hypothesis state machine drives the five commands and the account
listing of a live server, on each backend, and checks every answer against a model.

The OpenAPI document has no links between operations (no answer returns an identifier to feed
another call), so schemathesis' stateful mode has nothing to chain; this machine supplies the
state instead. UserIDs come from a small pool of SQL-shaped, Unicode-edge and invalid strings,
so that calls keep meeting the same accounts: imports in the three forms, deletes (duplicates,
admins, invalid items), checks, kicks and prefix listings must all agree with the model, item
for item. Size: TIMSERVER_FUZZ_EXAMPLES / 500 runs (at least 10) of up to 30 steps per backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from reliability_support import (
    FUZZ_EXAMPLES,
    Server,
    admin_query,
    assert_alive_and_serving,
    create_apps,
    log_defects,
    record,
    v4_query,
)

from timserver.service.rules import userid_problem

pytestmark = pytest.mark.slow

ADMIN = "rel_admin_q7"
POOL = ["alice", "Alice", "'; DROP TABLE accounts; --", "%", "_x", "e\u0301", "\u00e9",
        "\U0001f600", "\u202e", " ", "x" * 32, "é" * 16, ADMIN,
        "", "x" * 33, "tab\tin", "\u007f"]  # the last four are invalid UserIDs
userids = st.sampled_from(POOL)
nicks = st.none() | st.sampled_from(["", "Ann", "'; --", "\U0001f600", "n" * 500])


def test_a_state_machine_against_the_model(backend_db: str, tmp_path: Path) -> None:
    (app,) = create_apps(backend_db, [{"sdkappid": 1400007006, "admins": [ADMIN]}])
    server = Server(backend_db, tmp_path, "--no-access-log")
    client = httpx.Client(base_url=server.base_url, timeout=30)
    calls = {"n": 0}

    def call(command: str, body: dict) -> dict:
        calls["n"] += 1
        resp = client.post(f"/v4/im_open_login_svc/{command}?{v4_query(app)}",
                           content=json.dumps(body))
        data = resp.json()
        assert resp.status_code == 200 and data["ErrorCode"] != 70500, data
        return data

    class Accounts(RuleBasedStateMachine):
        @initialize()
        def empty(self) -> None:
            existing = [u for u in POOL if u != ADMIN and not userid_problem(u)]
            call("account_delete", {"DeleteItem": [{"UserID": u} for u in existing]})
            call("account_import", {"UserID": ADMIN, "Nick": ""})  # admins are accounts too
            self.model: dict[str, str] = {ADMIN: ""}  # UserID → Nick ("" for none)

        def exists(self, uid: str) -> bool:
            return uid in self.model

        @rule(uid=userids, nick=nicks, legacy=st.booleans())
        def import_one(self, uid: str, nick: str | None, legacy: bool) -> None:
            body = {"Identifier" if legacy else "UserID": uid, **({"Nick": nick} if nick is not None
                                                                   else {})}
            data = call("account_import", body)
            if userid_problem(uid):
                assert data["ErrorCode"] == 70402
                return
            assert data["ErrorCode"] == 0, data
            self.model[uid] = nick if nick is not None else self.model.get(uid, "")

        @rule(items=st.lists(st.tuples(userids, nicks), min_size=1, max_size=8))
        def import_list(self, items: list) -> None:
            data = call("multiaccount_import", {"AccountList": [
                {"UserID": u, **({"Nick": n} if n is not None else {})} for u, n in items]})
            assert data["ErrorCode"] == 0
            assert data["FailAccounts"] == list(dict.fromkeys(u for u, _ in items
                                                              if userid_problem(u)))
            for u, n in items:
                if not userid_problem(u):
                    self.model[u] = n if n is not None else self.model.get(u, "")

        @rule(uids=st.lists(userids, min_size=1, max_size=8))
        def import_accounts(self, uids: list[str]) -> None:
            data = call("multiaccount_import", {"Accounts": uids})
            assert data["FailAccounts"] == list(dict.fromkeys(u for u in uids
                                                              if userid_problem(u)))
            for u in uids:
                if not userid_problem(u):
                    self.model.setdefault(u, "")

        @rule(uids=st.lists(userids, min_size=1, max_size=8))
        def delete(self, uids: list[str]) -> None:
            data = call("account_delete", {"DeleteItem": [{"UserID": u} for u in uids]})
            expected = []
            for u in uids:
                if userid_problem(u) or u == ADMIN:
                    expected.append(70402)
                elif u in self.model:
                    del self.model[u]
                    expected.append(0)
                else:
                    expected.append(70107)
            assert [(i["UserID"], i["ResultCode"]) for i in data["ResultItem"]] == \
                list(zip(uids, expected, strict=True))

        @rule(uids=st.lists(userids, min_size=1, max_size=8))
        def check(self, uids: list[str]) -> None:
            data = call("account_check", {"CheckItem": [{"UserID": u} for u in uids]})
            assert [(i["UserID"], i["AccountStatus"], i["ResultCode"]) for i in data["ResultItem"]] \
                == [(u, "Imported" if self.exists(u) else "NotImported",
                     70402 if userid_problem(u) else 0) for u in uids]

        @rule(uid=userids.filter(lambda u: u != ADMIN))  # a kicked admin would lock us out
        def kick(self, uid: str) -> None:
            code = call("kick", {"UserID": uid})["ErrorCode"]
            assert code == (70402 if userid_problem(uid) else 0 if self.exists(uid) else 70107)

        @invariant()
        def listing_matches(self) -> None:
            if calls["n"] % 5:
                return
            calls["n"] += 1
            data = client.get(f"/_timserver/accounts?{admin_query(app)}&limit=200").json()
            listed = {a["UserID"]: a["Nick"] or "" for a in data["Accounts"]}
            assert listed == self.model
            for prefix in ("%", "_", "e", "\U0001f600"):
                page = client.get(f"/_timserver/accounts?{admin_query(app)}&prefix="
                                  f"{quote(prefix, safe='')}").json()
                assert {a["UserID"] for a in page["Accounts"]} == \
                    {u for u in listed if u.startswith(prefix)}

    runs = max(10, FUZZ_EXAMPLES // 500)
    try:
        run_state_machine_as_test(Accounts, settings=settings(
            max_examples=runs, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
        assert_alive_and_serving(server, app)
        assert log_defects(server.log()) == []
        record(f"stateful[{backend_db.split(':')[0]}]", runs=runs, requests=calls["n"])
    finally:
        client.close()
        server.stop()
