"""The emulator as a plugin of the request pipeline (``server/hooks.py``).

    before_call      refresh the rules and clock offsets when the database says they changed
                     (one memoised read; the app's clock is set before its UserSig is judged)
    around_handler   the app's fault rules around the command's handler
    endpoints        /_timserver/faults, /faults/clear, /reset, /clock (``control.py``)

``timserver serve --no-emulator`` does not register it: then no rule, clock offset, reset or
snapshot has any effect on the running server, and its paths answer like unknown ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.commands import Command
from ..server.hooks import Call, Endpoint, Plugin, Serve, ServerHandles
from ..storage import App, StorageError
from . import faults
from .control import control_endpoints
from .logins import login_endpoints
from .state import Emulator

log = logging.getLogger("timserver.emulator")

FLUSH_MATCHES_EVERY = 0.5  # seconds: how late the count of an every-call rule may be written


@dataclass
class EmulatorPlugin(Plugin):
    name: str = "emulator"
    base_offset: float = 0.0  # serve --clock-offset
    state: Emulator = field(init=False, repr=False)
    holds: faults.Holds = field(default_factory=faults.Holds, repr=False)
    _matches: dict[int, int] = field(default_factory=dict, repr=False)
    _flush_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def setup(self, server: ServerHandles) -> None:
        super().setup(server)
        self.state = Emulator(server.storage, server.clock, server.limiter,
                              deadline=server.deadline, base_offset=self.base_offset)

    async def shutdown(self) -> None:
        await self.flush_matches()

    async def before_call(self, call: Call) -> None:
        await self.state.refresh()

    async def around_handler(self, call: Call, cmd: Command, app: App, request: Any,
                             serve: Serve) -> bytes:
        rules = self.state.live_rules(app.sdkappid)
        if not rules:
            return await serve(cmd, app, request)
        return await faults.apply(rules, self.state.storage, cmd, app, request, serve,
                                  self.state.deadline, self.holds, call.disconnected,
                                  self._count_match)

    def endpoints(self) -> Sequence[Endpoint]:
        assert self.handles is not None, "setup() first"
        return [*control_endpoints(self), *login_endpoints(self.handles.presence)]

    # --- matches of rules that fire on every call: counted here, written in batches ---------------

    def _count_match(self, rule_id: int) -> None:
        self._matches[rule_id] = self._matches.get(rule_id, 0) + 1
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(
                FLUSH_MATCHES_EVERY, lambda: loop.create_task(self.flush_matches()))

    async def flush_matches(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        counts, self._matches = self._matches, {}
        if not counts:
            return
        try:
            await self.state.storage.add_fault_matches(counts)
        except (StorageError, OSError, TimeoutError) as exc:  # counts are informative: drop them
            log.warning("cannot record fault rule matches: %s", exc)
