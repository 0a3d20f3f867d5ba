"""SIGKILL torture: kill the server in the middle of concurrent imports and deletes, restart it,
and check the data against every acknowledged operation — round after round, on each backend.

Each worker thread owns a pool of UserIDs (no other worker touches them), so the operations on
one UserID form a sequence whose order is known. A worker sends single imports (with a Nick),
batch imports in both formats (``AccountList`` with Nicks, ``Accounts`` without) and batch
deletes over its pool, and a UserID whose operation was not acknowledged (no answer: the kill;
or any answer but OK) is left alone until the round is verified. After the restart:

* an account whose last acknowledged operation was an import exists, with the Nick of the last
  acknowledged import that set one; an account whose last acknowledged operation was a delete is
  gone — unless a later operation, sent but never answered, re-created it (it may or may not have
  applied: both outcomes are accepted, nothing else);
* the app holds no account that was never requested (the whole app is listed, page by page,
  and UserIDs that were about to be used are checked too).

Rounds continue on the same database: what a round verified is the starting state of the next.
Size: TIMSERVER_TORTURE_ROUNDS rounds per backend.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from reliability_support import (
    TORTURE_ROUNDS,
    Server,
    admin_query,
    create_apps,
    record,
    v4_query,
)

pytestmark = pytest.mark.slow

WORKERS = 8
POOL = 120  # UserIDs per worker
ABSENT = None


@dataclass
class Key:
    """What is known of one UserID: its state after the last acknowledged operation (None:
    absent, else the Nick), and the possible states of an operation sent but not answered."""

    state: str | None = ABSENT  # ABSENT, or the stored Nick ("" for no Nick)
    pending: list = field(default_factory=list)  # states an unanswered operation may have left


def _imported(nick: str | None, before: str | None) -> str:
    """The stored Nick after an import: a given Nick replaces it; none keeps an existing one."""
    if nick is not None:
        return nick
    return before if before is not ABSENT else ""


class Worker(threading.Thread):
    def __init__(self, n: int, base_url: str, app, keys: dict[str, Key], round_no: int,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.n, self.base_url, self.app, self.keys = n, base_url, app, keys
        self.round_no, self.stop_event = round_no, stop
        self.rng = random.Random(f"{n}-{round_no}")
        self.acked = 0
        self.unanswered = 0
        self.calls = 0

    def run(self) -> None:
        query = v4_query(self.app)
        mine = [f"t{self.n}_{i}" for i in range(POOL)]
        seq = 0
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.stop_event.is_set() and self.calls < 20000:
                free = [u for u in mine if not self.keys[u].pending]
                if not free:
                    return
                seq += 1
                nick = f"r{self.round_no}s{seq}w{self.n}"
                kind = self.rng.choice(["one", "list", "list", "accounts", "delete", "delete"])
                batch = self.rng.sample(free, min(len(free), self.rng.randint(1, 40)))
                if kind == "one":
                    batch = batch[:1]
                    path, body = "account_import", {"UserID": batch[0], "Nick": nick}
                    after = {batch[0]: _imported(nick, self.keys[batch[0]].state)}
                elif kind == "list":
                    items = [{"UserID": u, **({"Nick": nick} if i % 2 == 0 else {})}
                             for i, u in enumerate(batch)]
                    path, body = "multiaccount_import", {"AccountList": items}
                    after = {it["UserID"]: _imported(it.get("Nick"), self.keys[it["UserID"]].state)
                             for it in items}
                elif kind == "accounts":
                    path, body = "multiaccount_import", {"Accounts": batch}
                    after = {u: _imported(None, self.keys[u].state) for u in batch}
                else:
                    path, body = "account_delete", {"DeleteItem": [{"UserID": u} for u in batch]}
                    after = dict.fromkeys(batch, ABSENT)
                for u in batch:  # in flight: either outcome is possible until the answer
                    self.keys[u].pending = [after[u]]
                self.calls += 1
                try:
                    resp = client.post(f"/v4/im_open_login_svc/{path}?{query}",
                                       content=json.dumps(body))
                    data = resp.json()
                except (httpx.TransportError, ValueError):
                    self.unanswered += 1
                    return  # the server is gone: these stay pending
                ok = data.get("ErrorCode") == 0 and not data.get("FailAccounts")
                if path == "account_delete" and ok:
                    ok = all(it["ResultCode"] in (0, 70107) for it in data["ResultItem"])
                if not ok:
                    self.unanswered += 1  # refused or failed: treated as "may have applied"
                    continue
                self.acked += 1
                for u in batch:
                    self.keys[u].state = after[u]
                    self.keys[u].pending = []


def _list_all(client: httpx.Client, app) -> dict[str, str]:
    """Every account of the app (UserID → Nick, "" for none), through the admin endpoint."""
    found: dict[str, str] = {}
    after = ""
    for _ in range(10000):
        resp = client.get(f"/_timserver/accounts?{admin_query(app)}&limit=200&"
                          + urlencode({"after": after}))
        data = resp.json()
        assert data["ErrorCode"] == 0, data
        for account in data["Accounts"]:
            found[account["UserID"]] = account["Nick"] or ""
        after = data["Next"]
        if not after:
            return found
    raise AssertionError("listing did not end")


def _wait_postgres_quiet(db: str) -> None:
    """After a SIGKILL the killed server's PostgreSQL sessions end by themselves; verify only
    once none is left, so that no transaction of the killed server can still commit."""
    import asyncio

    async def quiet() -> None:
        conn = await asyncpg.connect(db)
        try:
            for _ in range(200):
                left = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")
                if left == 0:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"{left} sessions of the killed server did not end")
        finally:
            await conn.close()
    asyncio.run(quiet())


def test_sigkill_in_the_middle_of_imports_and_deletes(backend_db: str, tmp_path: Path) -> None:
    backend = backend_db.split(":")[0]
    (app,) = create_apps(backend_db, [{"sdkappid": 1400007003}])
    keys = {f"t{w}_{i}": Key() for w in range(WORKERS) for i in range(POOL)}
    never = [f"t{w}_{i}" for w in range(WORKERS) for i in range(POOL, POOL + 20)]
    rng = random.Random(7)
    totals = {"rounds": 0, "acked_calls": 0, "cut_calls": 0, "userids_verified": 0,
              "uncertain_resolved": 0}
    server = Server(backend_db, tmp_path, log_level="warning")
    try:
        for round_no in range(TORTURE_ROUNDS):
            stop = threading.Event()
            workers = [Worker(w, server.base_url, app, keys, round_no, stop)
                       for w in range(WORKERS)]
            for worker in workers:
                worker.start()
            time.sleep(rng.uniform(0.4, 1.5))
            server.kill()  # SIGKILL, mid-stream
            stop.set()
            for worker in workers:
                worker.join(timeout=30)
            acked = sum(w.acked for w in workers)
            assert acked > 20, f"round {round_no}: the stream had barely started ({acked} acks)"
            if backend.startswith("postgres"):
                _wait_postgres_quiet(backend_db)

            server.start()
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                stored = _list_all(client, app)
                extra = set(stored) - set(keys) - set(app.admins)
                assert not extra, f"round {round_no}: never-requested accounts {sorted(extra)[:5]}"
                resp = client.post(f"/v4/im_open_login_svc/account_check?{v4_query(app)}",
                                   content=json.dumps({"CheckItem": [{"UserID": u}
                                                                     for u in never[:100]]}))
                assert all(it["AccountStatus"] == "NotImported"
                           for it in resp.json()["ResultItem"]), "a never-requested UserID exists"
            wrong = []
            for uid, key in keys.items():
                seen = stored.get(uid, ABSENT)
                allowed = [key.state, *key.pending]
                if seen not in allowed:
                    wrong.append(f"{uid}: stored {seen!r}, acknowledged {key.state!r}, "
                                 f"unanswered {key.pending!r}")
                if key.pending:
                    totals["uncertain_resolved"] += 1
                key.state, key.pending = seen, []  # the next round starts from what is stored
            assert not wrong, f"round {round_no}: " + "; ".join(wrong[:10])
            totals["rounds"] += 1
            totals["acked_calls"] += acked
            totals["cut_calls"] += sum(w.unanswered for w in workers)
            totals["userids_verified"] += len(keys)
        assert server.alive()
    finally:
        server.stop()
    record(f"torture[{backend}]", **totals)
