"""THE table of REST commands: one declaration per command.

Everything else derives from it: the server's routing, body validation and rate limits, the
OpenAPI document, the console's command list and sample bodies, and the SDK's methods. Adding a
command means adding one ``Command`` here and one handler method on ``AccountService``.
Reads like docs/protocol.md §7.6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from msgspec import Struct

from . import messages as m
from .validate import RequestParser

#: The largest 32-bit unsigned integer: the top of ``random`` and of an SDKAppID.
MAX_UINT32 = 4294967295

#: Query parameters of every call (docs/protocol.md §2.1), for the OpenAPI document and the SDK.
QUERY_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("sdkappid", "The app's SDKAppID (decimal digits)."),
    ("identifier", "The caller's UserID; must be an app admin."),
    ("usersig", "The admin's UserSig (TLSSigAPIv2)."),
    ("random", f"A random 32-bit unsigned integer, 0..{MAX_UINT32}, per request."),
    ("contenttype", "Always `json`."),
)

#: Codes any /v4 call can answer before its own handler runs (docs/protocol.md §4).
COMMON_ERRORS: tuple[int, ...] = (
    60002, 60003, 60004, 60006, 60007, 60008, 60009, 60012, 60015,
    70001, 70002, 70003, 70005, 70009, 70013, 70014, 70169, 70402, 70403, 70500,
)


RequestT = TypeVar("RequestT", bound=Struct)
ResponseT = TypeVar("ResponseT", bound=Struct)


@dataclass(frozen=True)
class Command(Generic[RequestT, ResponseT]):
    service: str
    name: str
    summary: str
    request: type[RequestT]
    response: type[ResponseT]
    handler: str  # the AccountService method that serves it
    default_rate: int  # accepted calls per second per app (docs/protocol.md §8.1)
    max_items: int  # the most items one call may carry in its batch array
    sample: dict[str, Any]  # Tencent's documented sample body
    errors: tuple[int, ...] = ()  # codes of the command's own rules, beyond COMMON_ERRORS
    exactly_one_of: tuple[str, ...] = ()
    parse: RequestParser = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parser = RequestParser(self.request, self.max_items, self.exactly_one_of)
        object.__setattr__(self, "parse", parser)

    @property
    def path(self) -> str:
        return f"/v4/{self.service}/{self.name}"


LOGIN_SVC = "im_open_login_svc"

# Each declaration is also named (``ACCOUNT_IMPORT := ...``): its type, e.g.
# ``Command[AccountImportRequest, Envelope]``, gives the SDK's method for it (timserver.client).
COMMANDS: tuple[Command[Any, Any], ...] = (
    ACCOUNT_IMPORT := Command(
        LOGIN_SVC, "account_import", "Import one account",
        request=m.AccountImportRequest, response=m.Envelope, handler="account_import",
        default_rate=200, max_items=1,
        sample={"UserID": "test", "Nick": "test", "FaceUrl": "http://www.qq.com"},
        errors=(40601, 70398),
    ),
    MULTIACCOUNT_IMPORT := Command(
        LOGIN_SVC, "multiaccount_import", "Import up to 100 accounts",
        request=m.MultiAccountImportRequest, response=m.MultiAccountImportResponse,
        handler="multiaccount_import", default_rate=100, max_items=100,
        sample={"AccountList": [
            {"UserID": "UserID_001", "Nick": "Nick_001", "FaceUrl": "http://www.qq.com"},
            {"UserID": "UserID_002", "Nick": "Nick_002", "FaceUrl": "http://www.qq.com"},
        ]},
        exactly_one_of=("Accounts", "AccountList"),
    ),
    ACCOUNT_DELETE := Command(
        LOGIN_SVC, "account_delete", "Delete up to 100 accounts",
        request=m.AccountDeleteRequest, response=m.AccountDeleteResponse,
        handler="account_delete", default_rate=100, max_items=100,
        sample={"DeleteItem": [{"UserID": "UserID_1"}, {"UserID": "UserID_2"}]},
        errors=(71000,),
    ),
    ACCOUNT_CHECK := Command(
        LOGIN_SVC, "account_check", "Query whether up to 100 accounts are imported",
        request=m.AccountCheckRequest, response=m.AccountCheckResponse,
        handler="account_check", default_rate=100, max_items=100,
        sample={"CheckItem": [{"UserID": "UserID_1"}, {"UserID": "UserID_2"}]},
    ),
    KICK := Command(
        LOGIN_SVC, "kick", "Invalidate an account's login state (earlier UserSigs)",
        request=m.KickRequest, response=m.Envelope, handler="kick",
        default_rate=200, max_items=1, sample={"UserID": "test"}, errors=(70107,),
    ),
)

BY_PATH: dict[tuple[str, str], Command] = {(c.service, c.name): c for c in COMMANDS}
BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
DEFAULT_RATES: dict[str, int] = {c.name: c.default_rate for c in COMMANDS}
