"""The ``timserver`` command line: one module per command group."""

from __future__ import annotations

import click

from .. import __version__
from . import app, serve, usersig


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="timserver")
def main() -> None:
    """timserver: a self-hosted, wire-compatible Tencent Cloud IM account REST API."""


main.add_command(serve.serve)
main.add_command(app.app)
main.add_command(usersig.usersig)
