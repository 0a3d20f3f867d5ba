"""Fixtures of the reliability suite (fuzzing, SIGKILL torture, soak, security).

Size knobs (environment): TIMSERVER_FUZZ_EXAMPLES, TIMSERVER_TORTURE_ROUNDS,
TIMSERVER_SOAK_SECONDS. ``make test`` runs the small defaults; ``make fuzz``, ``make torture``
and ``make soak`` the full size (docs/reliability.md). The figures of each run are printed at the
end of the session, and appended as JSON lines to ``$TIMSERVER_RELIABILITY_FIGURES`` when set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import fresh_postgres_database

# Works under both pytest import modes: make reliability_support importable by the test modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from reliability_support import FIGURES  # noqa: E402


@pytest.fixture(params=["sqlite", "postgres"])
def backend_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend (the PostgreSQL one is this test process's own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reliability.db'}"
    return fresh_postgres_database(request.getfixturevalue("pg_server"))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for entry in FIGURES:
        fields = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "test")
        terminalreporter.write_line(f"{entry['test']}: {fields}")
