"""Session fixtures for the black-box contract tests of timserver.

Creates one SQLite database with the apps of contract_support.APPS through the CLI (before the
server starts), sets their rate limits, starts `python -m timserver serve` on a free loopback
port and stops it at the end. Helpers live in contract_support.py.
"""

import concurrent.futures
import os
import shutil
import sys
import tempfile

import pytest

# Works under both pytest import modes (prepend and importlib): make contract_support importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from contract_support import (  # noqa: E402
    APPS,
    Api,
    ServerProcess,
    cli_create_app,
    cli_set_limit,
    sqlite_url,
)

# --------------------------------------------------------------------------------------------
# Session fixture: database, apps, server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="timserver-contract-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server(workdir):
    # TIMSERVER_CONTRACT_DB: run the suite against another database (test_contract_on_postgres)
    db = os.environ.get("TIMSERVER_CONTRACT_DB") or sqlite_url(os.path.join(workdir, "contract.db"))
    apps = list(APPS.values())
    # The first create initialises the database; the rest can go in parallel.
    cli_create_app(db, apps[0], cwd=workdir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(lambda a: cli_create_app(db, a, cwd=workdir), apps[1:]))
        jobs = [(a.sdkappid, cmd, rate) for a in apps for cmd, rate in a.limits.items()]
        list(ex.map(lambda j: cli_set_limit(db, *j, cwd=workdir), jobs))
    srv = ServerProcess(db, workdir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api(server):
    a = Api(server.base_url)
    yield a
    a.close()


@pytest.fixture(scope="session")
def apps(server):
    return APPS


@pytest.fixture(scope="session")
def dev(apps):
    return apps["dev"]


@pytest.fixture(scope="session")
def dev2(apps):
    return apps["dev2"]


@pytest.fixture(scope="session")
def trial(apps):
    return apps["trial"]


@pytest.fixture(scope="session")
def pro(apps):
    return apps["pro"]
