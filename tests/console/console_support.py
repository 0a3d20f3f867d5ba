"""Constants shared by the web-console tests (imported after conftest.py puts this folder on
sys.path, as tests/contract does)."""

import json
import os
from pathlib import Path

from support import KEY, LiveServer, cli

TOKEN = "console-test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LIVE_APP = 1400000777
OTHER_APP = 1400000778
OTHER_KEY = "a" * 64


def start_live_console(folder: Path, *extra: str) -> LiveServer:
    """`timserver serve` (with ``extra`` options) on a loopback port with two apps, the
    console token set to TOKEN."""
    db = f"sqlite:///{folder / 'live.db'}"
    json.loads(cli("app", "create", "--json", "--sdkappid", str(LIVE_APP), "--key", KEY,
                   db=db).stdout)
    cli("app", "create", "--json", "--sdkappid", str(OTHER_APP), "--key", OTHER_KEY, db=db)
    for name in ("account_import", "multiaccount_import", "account_delete", "account_check",
                 "kick"):
        cli("app", "set-limit", str(LIVE_APP), name, "0", db=db)
    old = os.environ.get("TIMSERVER_CONSOLE_TOKEN")
    os.environ["TIMSERVER_CONSOLE_TOKEN"] = TOKEN
    try:
        return LiveServer(db, *extra)
    finally:
        if old is None:
            os.environ.pop("TIMSERVER_CONSOLE_TOKEN", None)
        else:
            os.environ["TIMSERVER_CONSOLE_TOKEN"] = old
