"""The same account file, read by ``serve --seed`` and by ``accounts import``, makes the same
accounts (issue 16, item 2): two real servers over loopback HTTP, their databases compared."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from timserver.testing import TimServer, start_server

# One file of each shape, among them those only one of the two commands accepted before.
FILES = {
    "profiles.csv": "UserID,Nick,FaceUrl\r\nfa_amy,Amy,http://a/1.png\r\nfa_bob,,\r\n"
                    "\"fa_c,d\",\"C D\",\r\n",
    "moved.csv": "FaceUrl,Nick,UserID\nhttp://f,Fay,fa_fay\n",  # UserID not first: seed only
    "old.ndjson": '{"UserID": "fa_amy", "Nick": "Amy"}\n\n{"Identifier": "fa_bob"}\n',  # seed
    "extra.csv": "UserID,Nick\nfa_amy,Amy,extra\n",  # more cells than the header: import only
    "users": "fa_amy\nfa bob\n\nfa_cécile\n",
}


def rows(server: TimServer) -> dict[str, tuple[Any, Any]]:
    with sqlite3.connect(server.db.removeprefix("sqlite:///")) as conn:
        return {uid: (nick, face) for uid, nick, face in conn.execute(
            "SELECT user_id, nick, face_url FROM accounts WHERE sdkappid = ? AND is_admin = 0",
            (server.sdkappid,))}


@pytest.fixture(scope="module")
def importer(tmp_path_factory: pytest.TempPathFactory):
    with start_server(folder=tmp_path_factory.mktemp("importer")) as server:
        yield server


@pytest.mark.parametrize("name", sorted(FILES))
def test_serve_seed_and_accounts_import_make_the_same_accounts(
        importer: TimServer, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(FILES[name], "utf-8")
    importer.reset()
    env = {**os.environ, "TIMSERVER_ENDPOINT": importer.base_url,
           "TIMSERVER_SDKAPPID": str(importer.sdkappid), "TIMSERVER_KEY": importer.key}
    done = subprocess.run([sys.executable, "-m", "timserver", "accounts", "import", str(path),
                           "--no-progress", "--state", str(tmp_path / "state")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = rows(importer)
    assert imported  # every file holds accounts
    with start_server(args=["--seed", str(path)], folder=tmp_path / "seeded") as seeded:
        assert rows(seeded) == imported


def test_a_file_neither_can_read_is_refused_by_both_with_the_same_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Nick,FaceUrl\nAmy,x\n")
    says = "bad.csv, line 1: the CSV header must name a UserID column (UserID,Nick,FaceUrl)"
    env = {**os.environ, "TIMSERVER_ENDPOINT": "http://127.0.0.1:9", "TIMSERVER_SDKAPPID": "1",
           "TIMSERVER_KEY": "k"}  # nothing is sent: the file is read first
    for args in (["serve", "--port", "1", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--seed"],
                 ["accounts", "import", "--no-progress"]):
        done = subprocess.run([sys.executable, "-m", "timserver", *args, str(path)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and says in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
