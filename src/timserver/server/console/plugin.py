"""The console as a plugin of the pipeline: the admin endpoints, the page and its endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.routing import BaseRoute

from ..hooks import Endpoint, Gates, Plugin
from .admin import admin_endpoints
from .page import console_endpoints, page_routes


@dataclass
class ConsolePlugin(Plugin):
    """The admin endpoints always; the page and its endpoints where the console is on."""

    name: str = "console"
    #: whether the emulator's powers are on (the page offers simulated logins only then)
    emulator: bool = False

    def endpoints(self) -> Sequence[Endpoint]:
        server = self.handles
        assert server is not None, "setup() first"
        found = admin_endpoints(server, server.journal)
        if server.access.enabled:
            found += console_endpoints(server, server.access, server.journal,
                                       emulator=self.emulator)
        return found

    def routes(self, gates: Gates) -> Sequence[BaseRoute]:
        assert self.handles is not None, "setup() first"
        return page_routes(gates) if self.handles.access.enabled else []
