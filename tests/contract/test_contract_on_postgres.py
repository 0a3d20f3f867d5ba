"""The contract of login state, callbacks, profiles and deletion by edition (docs/protocol.md
§11) against a server on PostgreSQL: the same black-box files, run by a nested pytest whose
session server uses a fresh PostgreSQL database (``TIMSERVER_CONTRACT_DB``)."""

import os
import subprocess
import sys

import pytest
from support import own_postgres_database

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ("test_contract_online_status.py", "test_contract_logins.py",
         "test_contract_callbacks.py", "test_contract_profile.py",
         "test_contract_delete_edition.py")


def test_section_11_holds_on_postgresql():
    with own_postgres_database("timserver_contract") as db:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             *[os.path.join(HERE, f) for f in FILES]],
            env={**os.environ, "TIMSERVER_CONTRACT_DB": db}, capture_output=True, text=True,
            timeout=900, cwd=os.path.dirname(os.path.dirname(HERE)))
    tail = run.stdout[-3000:]
    assert run.returncode == 0, tail + run.stderr[-2000:]
    assert " passed" in tail and "failed" not in tail and "error" not in tail.lower(), tail
