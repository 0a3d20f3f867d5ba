"""Simulated logins: the emulator's endpoints that stand in for Tencent's client SDKs
(docs/protocol.md §11.2, docs/emulator.md).

    POST /_timserver/login       {"UserID", "Platform"}                 → that device Online
    POST /_timserver/logout      {"UserID", "Platform"?}                → Offline (all devices
                                                                          without Platform)
    POST /_timserver/disconnect  {"UserID", "Platform"?, "Reason"?}     → mobile devices
                                                                          PushOnline, others Offline

Signed by an admin of the app (any UserID), or by the user itself with its own UserSig: the
pipeline then checks that UserSig exactly as a /v4 call's (expired 70001, kicked 70005, ...),
as Tencent's login would. The login state itself is the server's (``service/presence.py``):
``query_online_status`` reads it with or without the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from ..protocol.errors import TimError
from ..protocol.messages import PLATFORMS, UserIDField
from ..server.hooks import Access, BadInput, Endpoint, EndpointCall
from ..service.presence import DISCONNECT_REASONS
from ..storage import App, Device

if TYPE_CHECKING:
    from ..service.presence import PresenceService

MAX_BODY_BYTES = 4 * 1024


# --- what the endpoints take and answer, for the OpenAPI document (server/openapi.py) ----------
Platform = Annotated[str, Meta(extra_json_schema={"enum": list(PLATFORMS)})]


class LoginIn(Struct, kw_only=True, forbid_unknown_fields=True):
    UserID: UserIDField
    Platform: Platform


class LogoutIn(Struct, kw_only=True, forbid_unknown_fields=True):
    UserID: UserIDField
    Platform: Annotated[Platform, Meta(description="Without it: every device.")] | UnsetType = \
        UNSET


class DisconnectIn(Struct, kw_only=True, forbid_unknown_fields=True):
    UserID: UserIDField
    Platform: Annotated[Platform, Meta(description="Without it: every device.")] | UnsetType = \
        UNSET
    Reason: Annotated[str, Meta(extra_json_schema={"enum": list(DISCONNECT_REASONS)})] | \
        UnsetType = UNSET


class DeviceState(Struct, kw_only=True):
    Platform: str
    Status: Annotated[str, Meta(extra_json_schema={"enum": ["Online", "PushOnline",
                                                            "Offline"]})]
    InstId: int


class LoginOut(Struct, kw_only=True):
    UserID: str
    Device: DeviceState
    KickedDevice: Annotated[list[DeviceState], Meta(
        description="The device of the same platform it replaced.")] | UnsetType = UNSET


class LogoutOut(Struct, kw_only=True):
    UserID: str
    LoggedOut: list[DeviceState]


class DisconnectOut(Struct, kw_only=True):
    UserID: str
    Disconnected: list[DeviceState]


def _device(device: Device, status: str) -> dict[str, Any]:
    return {"Platform": device.platform, "Status": status, "InstId": device.inst_id}


def login_endpoints(presence: PresenceService) -> list[Endpoint]:
    async def body_of(call: EndpointCall, *names: str) -> tuple[App, dict[str, Any]]:
        assert call.app is not None  # Access.SIGNED
        body = await call.json(MAX_BODY_BYTES)
        unknown = [key for key in body if key not in names]
        if unknown:
            raise BadInput(f"unknown field {unknown[0]!r} (this endpoint takes "
                           f"{', '.join(names)})")
        if "UserID" not in body:
            raise BadInput("UserID is required")
        user_id = body["UserID"]
        if call.identifier not in call.app.admins and call.identifier != user_id:
            raise TimError(70403, f"Request failed: {call.identifier!r} may log in only itself "
                                  "(sign with the UserID's own UserSig) unless it is an admin of "
                                  f"app {call.app.sdkappid}.")
        return call.app, body

    async def login(call: EndpointCall) -> dict[str, Any]:
        app, body = await body_of(call, "UserID", "Platform")
        if "Platform" not in body:
            raise BadInput("Platform is required")
        device, replaced = await presence.login(app, body["UserID"], body["Platform"])
        answer: dict[str, Any] = {"UserID": body["UserID"], "Device": _device(device, "Online")}
        if replaced is not None:
            answer["KickedDevice"] = [_device(replaced, "Offline")]
        return answer

    async def logout(call: EndpointCall) -> dict[str, Any]:
        app, body = await body_of(call, "UserID", "Platform")
        gone = await presence.logout(app, body["UserID"], body.get("Platform"))
        return {"UserID": body["UserID"], "LoggedOut": [_device(d, "Offline") for d in gone]}

    async def disconnect(call: EndpointCall) -> dict[str, Any]:
        app, body = await body_of(call, "UserID", "Platform", "Reason")
        changed = await presence.disconnect(app, body["UserID"], body.get("Platform"),
                                            body.get("Reason"))
        return {"UserID": body["UserID"], "Disconnected": [_device(d, s) for d, s in changed]}

    return [
        Endpoint("/_timserver/login", {"POST": login}, Access.SIGNED, cors=True,
                 summary="Log a simulated device of an account in", request=LoginIn,
                 response=LoginOut),
        Endpoint("/_timserver/logout", {"POST": logout}, Access.SIGNED, cors=True,
                 summary="Log an account's device (or every device) out", request=LogoutIn,
                 response=LogoutOut),
        Endpoint("/_timserver/disconnect", {"POST": disconnect}, Access.SIGNED, cors=True,
                 summary="Drop an account's connection (mobile devices stay PushOnline)",
                 request=DisconnectIn, response=DisconnectOut),
    ]
