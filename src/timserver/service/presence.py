"""Login state: simulated logins and ``openim/query_online_status`` (docs/protocol.md §11.1-2).

Tencent's logins come from its client SDKs; timserver's from the emulator's endpoints and the
CLI (``login``, ``logout``, ``disconnect``). Each account's devices are stored rows (an Offline
device has none); a ``PushOnline`` device turns Offline seven days after its login, on the app's
clock, when it is read: nothing runs in the background.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, TypeVar

from ..protocol import messages as m
from ..protocol.errors import TimError
from ..storage import App, Device, Storage
from ..storage.base import DeviceChange
from .clock import Clock
from .events import CALLBACK_PLATFORMS, STATE_CHANGE, EventSink, event, millis
from .rules import userid_problem, userid_problems

#: Mobile platforms: a dropped connection leaves them reachable by offline push.
PUSH_PLATFORMS = frozenset({"iPhone", "Android", "iPad"})
#: How long a device stays PushOnline after its login (and "no login for 7 days" is Offline).
PUSH_SECONDS = 7 * 86400
DISCONNECT_REASONS = ("LinkClose", "TimeOut")


def device_status(device: Device, now: float) -> str:
    if device.status == "PushOnline" and now - device.login_at >= PUSH_SECONDS:
        return "Offline"
    return device.status


def account_status(statuses: Sequence[str]) -> str:
    """Online if any device is, else PushOnline if any is, else Offline."""
    for status in ("Online", "PushOnline"):
        if status in statuses:
            return status
    return "Offline"


def check_platform(platform: object, *, optional: bool = False) -> str | None:
    if platform is None and optional:
        return None
    if platform not in m.PLATFORMS:
        raise TimError(70402, "Invalid parameters: Platform must be one of "
                              f"{', '.join(m.PLATFORMS)}.")
    return platform  # type: ignore[return-value]


class PresenceService:
    def __init__(self, storage: Storage, clock: Clock, events: EventSink | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.events = events

    # --- the two commands ---------------------------------------------------------------------
    async def query_online_status(self, app: App, req: m.QueryOnlineStatusRequest
                                  ) -> m.QueryOnlineStatusResponse:
        found, errors = await self._statuses(app, req)
        items = [m.OnlineStatusItem(To_Account=uid, Status=status, Detail=detail)
                 for uid, status, detail in found]
        return _finish(m.QueryOnlineStatusResponse(QueryResult=items, ErrorList=errors))

    async def querystate(self, app: App, req: m.QueryOnlineStatusRequest) -> m.QueryStateResponse:
        found, errors = await self._statuses(app, req)
        items = [m.QueryStateItem(To_Account=uid, State=status, Detail=detail)
                 for uid, status, detail in found]
        return _finish(m.QueryStateResponse(QueryResult=items, ErrorList=errors))

    async def _statuses(self, app: App, req: m.QueryOnlineStatusRequest) -> tuple[
            list[tuple[str, str, list[m.DeviceStatus] | m.UnsetType]], list[m.AccountError]]:
        ids = req.To_Account
        valid = [uid for uid, problem in zip(ids, userid_problems(ids), strict=True)
                 if not problem]
        existing = await self.storage.existing(app.sdkappid, valid)
        devices = await self.storage.devices(app.sdkappid, list(existing)) if existing else {}
        now = self.clock.now(app.sdkappid)
        detail_wanted = req.IsNeedDetail == 1
        inst_wanted = req.IsReturnInstid == 1
        found: list[tuple[str, str, list[m.DeviceStatus] | m.UnsetType]] = []
        errors: list[m.AccountError] = []
        for uid in ids:
            if uid not in existing:  # not imported, or not a valid UserID at all
                errors.append(m.AccountError(To_Account=uid, ErrorCode=70107))
                continue
            shown = [(d, s) for d in devices.get(uid, ()) if (s := device_status(d, now))
                     != "Offline"]
            detail: list[m.DeviceStatus] | m.UnsetType = m.UNSET
            if detail_wanted and shown:
                detail = [m.DeviceStatus(Platform=d.platform, Status=s,
                                         InstId=d.inst_id if inst_wanted else m.UNSET)
                          for d, s in shown]
            found.append((uid, account_status([s for _, s in shown]), detail))
        return found, errors

    # --- simulated logins (the emulator's endpoints and the CLI) --------------------------------
    async def login(self, app: App, user_id: str, platform: object) -> tuple[Device, Device | None]:
        """Log a device in (replacing the account's device on that platform): the new device
        and the one it replaced."""
        checked = check_platform(platform)
        assert checked is not None
        now = self.clock.now(app.sdkappid)
        new = Device(checked, "Online", secrets.randbelow(2**31 - 1) + 1, now)

        def log_in(devices: list[Device]) -> list[Device]:
            return [d for d in devices if d.platform != checked] + [new]
        before, _ = await self._change(app, user_id, log_in)
        replaced = next((d for d in before if d.platform == checked
                         and device_status(d, now) != "Offline"), None)
        body = _state_body(user_id, now, "Login", "Register")
        if replaced is not None:
            body["KickedDevice"] = [{"Platform": CALLBACK_PLATFORMS[replaced.platform]}]
        self._emit(app, user_id, body, CALLBACK_PLATFORMS[checked])
        return new, replaced

    async def logout(self, app: App, user_id: str, platform: object = None) -> list[Device]:
        """Log out one device, or every device (platform None): the devices logged out (those
        that were not Offline already)."""
        only = check_platform(platform, optional=True)
        before, after = await self._change(
            app, user_id, lambda ds: [d for d in ds if only is not None and d.platform != only])
        return self._state_events(app, user_id, before, after, "Logout", "Unregister")

    async def disconnect(self, app: App, user_id: str, platform: object = None,
                         reason: object = None) -> list[tuple[Device, str]]:
        """A dropped connection: mobile devices become PushOnline, the others Offline. Returns
        each device disconnected with its new status."""
        only = check_platform(platform, optional=True)
        why = "LinkClose" if reason is None else reason
        if why not in DISCONNECT_REASONS:
            raise TimError(70402, "Invalid parameters: Reason must be LinkClose or TimeOut.")
        now = self.clock.now(app.sdkappid)

        def drop(devices: list[Device]) -> list[Device]:
            kept = []
            for d in devices:
                if only is not None and d.platform != only:
                    kept.append(d)
                elif d.platform in PUSH_PLATFORMS and device_status(d, now) != "Offline":
                    kept.append(Device(d.platform, "PushOnline", d.inst_id, d.login_at))
            return kept
        before, after = await self._change(app, user_id, drop)
        now_status = {d.platform: d.status for d in after}
        changed = [(d, now_status.get(d.platform, "Offline")) for d in before
                   if (only is None or d.platform == only) and d.status == "Online"]
        for device, _ in changed:
            self._emit(app, user_id, _state_body(user_id, now, "Disconnect", str(why)),
                       CALLBACK_PLATFORMS[device.platform])
        return changed

    async def kicked(self, app: App, user_id: str, platform: str) -> None:
        """After a REST kick: every device logged out, one Logout event if any was online."""
        now = self.clock.now(app.sdkappid)
        if not await self.storage.devices(app.sdkappid, [user_id]):
            return  # the usual kick: nothing logged in, no write
        changed = await self.storage.change_devices(app.sdkappid, user_id, lambda ds: [])
        if changed is not None and any(device_status(d, now) != "Offline" for d in changed[0]):
            self._emit(app, user_id, _state_body(user_id, now, "Logout", "Unregister"), platform)

    async def status(self, app: App, user_ids: Sequence[str]) -> dict[str, list[tuple[Device, str]]]:
        """Each account's devices that are not Offline, with their status (the console)."""
        now = self.clock.now(app.sdkappid)
        found = await self.storage.devices(app.sdkappid, list(user_ids))
        return {uid: [(d, s) for d in devices if (s := device_status(d, now)) != "Offline"]
                for uid, devices in found.items()}

    # --- helpers --------------------------------------------------------------------------------
    async def _change(self, app: App, user_id: object, change: DeviceChange
                      ) -> tuple[list[Device], list[Device]]:
        if type(user_id) is not str or userid_problem(user_id):
            raise TimError(70402, "Invalid parameters: UserID must be a valid UserID (a string "
                                  "of 1 to 32 bytes, no control characters).")
        changed = await self.storage.change_devices(app.sdkappid, user_id, change)
        if changed is None:
            raise TimError(70107, f"The UserID {user_id!r} does not exist in this app: import "
                                  "it before logging it in.")
        return changed

    def _state_events(self, app: App, user_id: str, before: list[Device], after: list[Device],
                      action: str, reason: str) -> list[Device]:
        now = self.clock.now(app.sdkappid)
        remaining = {d.platform for d in after}
        gone = [d for d in before if d.platform not in remaining
                and device_status(d, now) != "Offline"]  # a device already Offline is not news
        for device in gone:
            self._emit(app, user_id, _state_body(user_id, now, action, reason),
                       CALLBACK_PLATFORMS[device.platform])
        return gone

    def _emit(self, app: App, user_id: str, body: dict[str, Any], platform: str) -> None:
        if self.events is not None:
            self.events.emit(app, event(body["CallbackCommand"], user_id, body, platform))


def _state_body(user_id: str, now: float, action: str, reason: str) -> dict[str, Any]:
    return {"CallbackCommand": STATE_CHANGE, "EventTime": millis(now),
            "Info": {"Action": action, "To_Account": user_id, "Reason": reason}}


Answer = TypeVar("Answer", m.QueryOnlineStatusResponse, m.QueryStateResponse)


def _finish(response: Answer) -> Answer:
    """70107 for the call when every account failed (docs/protocol.md §11.1)."""
    if not response.QueryResult:
        response.ActionStatus = "FAIL"
        response.ErrorCode = 70107
        response.ErrorInfo = ("None of the UserIDs in To_Account is an imported account of "
                              "this app: import them first.")
    return response
