"""Which plugins a server runs: the one place that knows both ``server/`` and its plugins.

``server/`` imports no plugin; the emulator imports only ``server/hooks.py``. This module puts
them together from the settings: the console always (its page only where it is on), the
emulator unless ``serve --no-emulator``.
"""

from __future__ import annotations

import json
import os

from .emulator import EmulatorPlugin
from .server.asgi import SETTINGS_ENV, Front, Settings, configure_logging, create_app
from .server.console import ConsolePlugin
from .server.hooks import Plugin


def plugins_for(settings: Settings) -> list[Plugin]:
    plugins: list[Plugin] = [ConsolePlugin(emulator=settings.emulator)]
    if settings.emulator:
        plugins.append(EmulatorPlugin(base_offset=settings.clock_offset))
    return plugins


def make_app(settings: Settings) -> Front:
    """The server ``settings`` describe, with its plugins."""
    return create_app(settings, plugins_for(settings))


def app_from_env() -> Front:
    """Factory for ``uvicorn --factory`` and worker processes: settings come as JSON in env."""
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging(settings)
    return make_app(settings)
