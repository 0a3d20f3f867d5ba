"""Helpers of the SDK and `timserver accounts` tests (imported as ``sdk_support``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import LiveServer, cli

from timserver.client import AsyncClient, Client


@dataclass
class ImApp:
    """An app of the live server, and how to reach it."""

    server: LiveServer
    sdkappid: int
    key: str
    admin: str

    @property
    def endpoint(self) -> str:
        return self.server.base_url

    def client(self, **options: Any) -> Client:
        return Client(self.sdkappid, self.key, self.admin, self.endpoint, **options)

    def aclient(self, **options: Any) -> AsyncClient:
        return AsyncClient(self.sdkappid, self.key, self.admin, self.endpoint, **options)

    def env(self) -> dict[str, str]:
        return {"TIMSERVER_ENDPOINT": self.endpoint, "TIMSERVER_SDKAPPID": str(self.sdkappid),
                "TIMSERVER_KEY": self.key, "TIMSERVER_ADMIN": self.admin}

    def set_limit(self, command: str, rate: int) -> None:
        cli("app", "set-limit", str(self.sdkappid), command, str(rate), db=self.server.db)

    def set_edition(self, edition: str) -> None:
        cli("app", "set-edition", str(self.sdkappid), edition, db=self.server.db)

    def fault(self, *args: str) -> None:
        """``timserver faults add`` for this app, e.g. ``fault("--code", "70500", "--times", "2")``."""
        cli("faults", "add", "--sdkappid", str(self.sdkappid), *args, db=self.server.db)

    def accounts(self, *args: str, stdin: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``timserver accounts ...`` with this app's connection in the environment."""
        return subprocess.run(
            [sys.executable, "-m", "timserver", "accounts", *args], input=stdin,
            capture_output=True, text=True, timeout=120,
            env={**os.environ, **(self.env() if env is None else env)})


def finished_batches(state: Path) -> set[int]:
    """The batches a `timserver accounts` state file records as finished."""
    if not state.exists():
        return set()
    found = set()
    for line in state.read_text().splitlines()[1:]:
        try:
            found.add(json.loads(line)["batch"])
        except (ValueError, KeyError):
            pass  # a line being written
    return found


def kill_half_way(im: ImApp, args: list[str], state: Path) -> set[int]:
    """Run ``timserver accounts ARGS`` (slowed by its ``--rate``), SIGKILL it once 15 of its
    batches are recorded in ``state``; the batches it finished."""
    run = subprocess.Popen([sys.executable, "-m", "timserver", "accounts", *args],
                           env={**os.environ, **im.env()}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(finished_batches(state)) < 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    return finished_batches(state)
