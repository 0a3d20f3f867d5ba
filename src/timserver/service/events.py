"""What the services tell the outside world: the events of third-party callbacks.

The services build each event's body (docs/protocol.md §11.3) and hand it to an ``EventSink``;
the server's callback sender (``server/callbacks.py``) decides whether the app wants it and
delivers it, after the answer and never in its way. A service without a sink emits nothing.

Who caused an event (the calling admin, the client's address) is known to the request pipeline,
not to the service: the pipeline sets ``ORIGIN`` for the call, and events read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from ..storage import App

STATE_CHANGE = "State.StateChange"
PORTRAIT_SET = "Profile.CallbackPortraitSet"
CALLBACK_COMMANDS = (STATE_CHANGE, PORTRAIT_SET)

#: ``OptPlatform`` of an event a REST call caused (kick, portrait_set).
REST_PLATFORM = "RESTAPI"
#: ``OptPlatform`` of a simulated login's device: the callback spelling of each platform.
CALLBACK_PLATFORMS = {"iPhone": "IOS", "Android": "Android", "Web": "Web", "PC": "Windows",
                      "iPad": "iPad", "Mac": "Mac"}


@dataclass(frozen=True, slots=True)
class Origin:
    """Who made the call that caused an event."""

    identifier: str
    client_ip: str


ORIGIN: ContextVar[Origin | None] = ContextVar("timserver_origin", default=None)


@dataclass(frozen=True, slots=True)
class Event:
    command: str  # CallbackCommand
    user_id: str  # deliveries for one UserID keep their order
    body: dict[str, Any]
    platform: str  # OptPlatform
    client_ip: str


class EventSink(Protocol):
    def emit(self, app: App, event: Event) -> None:
        """Take an event for delivery; returns at once and never raises."""


def event(command: str, user_id: str, body: dict[str, Any], platform: str) -> Event:
    origin = ORIGIN.get()
    return Event(command, user_id, body, platform, origin.client_ip if origin else "")


def millis(seconds: float) -> int:
    """``EventTime``: Unix milliseconds."""
    return int(seconds * 1000)


def caller() -> str:
    """The identifier of the call being served ("" outside a call)."""
    origin = ORIGIN.get()
    return origin.identifier if origin else ""
