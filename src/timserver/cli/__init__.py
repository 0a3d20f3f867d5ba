"""The ``timserver`` command line: one module per command group, imported when used."""

from __future__ import annotations

import click

from .. import __version__
from ._lazy import LazyGroup

COMMANDS = {
    "serve": "timserver.cli.serve:serve",
    "app": "timserver.cli.app:app",
    "usersig": "timserver.cli.usersig:usersig",
    "migrate": "timserver.cli.migrate:migrate",
    "accounts": "timserver.cli.accounts:accounts",
    # The emulator's powers (docs/emulator.md).
    "faults": "timserver.cli.faults:faults",
    "reset": "timserver.cli.state:reset",
    "seed": "timserver.cli.state:seed",
    "snapshot": "timserver.cli.state:snapshot",
    "clock": "timserver.cli.state:clock",
    "login": "timserver.cli.logins:login",
    "logout": "timserver.cli.logins:logout",
    "disconnect": "timserver.cli.logins:disconnect",
    # A receiver of third-party callbacks, to run beside one's own code.
    "callbacks": "timserver.cli.callbacks:callbacks",
    # The whole installation as one file (timserver.portable).
    "export": "timserver.cli.portable:export",
    "import": "timserver.cli.portable:import_",
}


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="timserver")
def main() -> None:
    """timserver: a self-hosted, wire-compatible Tencent Cloud IM account REST API."""
