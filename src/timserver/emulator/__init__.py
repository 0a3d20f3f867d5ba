"""Emulator powers (docs/emulator.md): fault injection, reset, seed, snapshots, a clock.

A plugin of the request pipeline: it imports ``server/hooks.py`` and nothing else of
``server/``; ``timserver.wiring`` registers it unless ``serve --no-emulator``.

* ``plugin.py``    the hooks: refresh before a call, faults around the handler, endpoints;
* ``faults.py``    fault rules: what they match, what they do;
* ``state.py``     the per-process ``Emulator``: rules and clock offsets (server-wide and per
                   app) refreshed from storage;
* ``control.py``   the admin-authenticated endpoints under ``/_timserver/``;
* ``seed.py``      ``serve --seed``: an account file (``accountfiles.py``) checked and imported;

Snapshots (``timserver snapshot``) are the storage's: ``timserver.storage.snapshots_for(url)``.

Everything the emulator changes lives in the database, so the CLI, a running server and all of
its worker processes see the same rules and the same clock.
"""

from __future__ import annotations

from .faults import DropConnection, FaultRule, RuleError, parse_rule
from .plugin import EmulatorPlugin
from .state import Emulator

__all__ = ["DropConnection", "Emulator", "EmulatorPlugin", "FaultRule", "RuleError",
           "parse_rule"]
