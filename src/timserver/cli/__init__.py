"""The ``timserver`` command line: one module per command group."""

from __future__ import annotations

import click

from .. import __version__
from . import accounts, app, load, migrate, serve, usersig
from . import faults as faults_cli
from . import portable as portable_cli
from . import state as state_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="timserver")
def main() -> None:
    """timserver: a self-hosted, wire-compatible Tencent Cloud IM account REST API."""


main.add_command(serve.serve)
main.add_command(app.app)
main.add_command(usersig.usersig)
main.add_command(migrate.migrate)
main.add_command(accounts.accounts)
accounts.accounts.add_command(load.load)  # accounts load: straight into the database
# The emulator's powers (docs/emulator.md).
main.add_command(faults_cli.faults)
main.add_command(state_cli.reset)
main.add_command(state_cli.seed)
main.add_command(state_cli.snapshot)
main.add_command(state_cli.clock)
# The whole installation as one file (timserver.portable).
main.add_command(portable_cli.export)
main.add_command(portable_cli.import_)
