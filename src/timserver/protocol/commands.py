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
from .errors import OPENIM_PARSE_INFO, TimError, meaning
from .items import ErrorList, FailList, ItemAnswer, ResultList, UserIDs
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


@dataclass(frozen=True)
class BodyCodes:
    """Codes of a command's own for a body that breaks the rules of docs/protocol.md §4 step 9
    (``openim`` and ``profile`` commands answer theirs instead of 60003 / 70402 / 60015).

    ``rules``: (kind, field, code), first match wins; a None kind or field matches any (kinds:
    ``validate.BodyError``; ``json`` for a body that is not JSON, ``item`` for an array element
    of the wrong type); anything else answers ``default``. ``literal``: the default code's
    ErrorInfo, word for word (Tencent's own text, which clients may match).
    """

    default: int
    rules: tuple[tuple[str | None, str | None, int], ...] = ()
    literal: str | None = None

    def failure(self, err: TimError) -> TimError:
        kind = getattr(err, "kind", "json")
        field = getattr(err, "field", "")
        if getattr(err, "in_item", False) and kind in ("type", "number"):
            kind = "item"
        detail = getattr(err, "detail", err.info)
        code = next((c for k, f, c in self.rules
                     if k in (None, kind) and f in (None, field)), self.default)
        if code == self.default and self.literal:
            return TimError(code, self.literal)
        return TimError(code, f"{meaning(code)} ({detail})")


RequestT = TypeVar("RequestT", bound=Struct)
ResponseT = TypeVar("ResponseT", bound=Struct)


@dataclass(frozen=True)
class Command(Generic[RequestT, ResponseT]):
    service: str
    name: str
    summary: str
    request: type[RequestT]
    response: type[ResponseT]
    handler: str  # the method of the service's handler object (server/dispatch.py) serving it
    default_rate: int  # accepted calls per second per app (docs/protocol.md §8.1)
    max_items: int  # the most items one call may carry in its batch array
    sample: dict[str, Any]  # Tencent's documented sample body
    errors: tuple[int, ...] = ()  # codes of the command's own rules, beyond COMMON_ERRORS
    exactly_one_of: tuple[str, ...] = ()
    body_codes: BodyCodes | None = None  # the command's own codes for a refused body
    #: fields a failure of the command's body or handler carries after the envelope's three
    fail_fields: dict[str, Any] = field(default_factory=dict)
    #: where the request names UserIDs (protocol/items.py); alternatives, the first one present
    #: in a request counts (multiaccount_import: ``Accounts`` or ``AccountList``)
    user_ids: tuple[UserIDs, ...] = ()
    #: how the answer reports a failed item of the batch; None: one account per call (failing
    #: its item fails the call)
    items: ItemAnswer | None = None
    parse: RequestParser = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parser = RequestParser(self.request, self.max_items, self.exactly_one_of)
        object.__setattr__(self, "parse", parser)

    @property
    def path(self) -> str:
        return f"/v4/{self.service}/{self.name}"

    def named(self, request: Any) -> tuple[UserIDs | None, list[str]]:
        """Where a (validated) request names its UserIDs, and those UserIDs in order,
        duplicates kept: the items of a batch, or the one account of the call."""
        for where in self.user_ids:
            found = where.read(request)
            if found is not None:
                return where, found
        return None, []

    def user_ids_of(self, request: Any) -> list[str]:
        return self.named(request)[1]


LOGIN_SVC = "im_open_login_svc"
OPENIM = "openim"
PROFILE = "profile"

#: docs/protocol.md §11.1: a refused body answers 90001 (Tencent's literal text), a To_Account
#: element that is not a string 90003, more than 500 accounts 90011.
OPENIM_BODY = BodyCodes(90001, (("too_many", None, 90011), ("item", "To_Account", 90003)),
                        literal=OPENIM_PARSE_INFO)
#: docs/protocol.md §11.4: 40002 for a missing To_Account, 40001 for anything else.
PROFILE_BODY = BodyCodes(40001, (("missing", "To_Account", 40002),))
PROFILE_FAIL = {"ErrorDisplay": ""}
_STATUS_SAMPLE = {"To_Account": ["id1", "id2", "id4"], "IsNeedDetail": 1}
_TO_ACCOUNT = (UserIDs("To_Account"),)
#: query_online_status / querystate: a failed item is an ErrorList entry (as 70107 is)
_STATUS_ITEMS = ErrorList("QueryResult", "ErrorList",
                          lambda uid, code: m.AccountError(To_Account=uid, ErrorCode=code))

# Each declaration is also named (``ACCOUNT_IMPORT := ...``): its type, e.g.
# ``Command[AccountImportRequest, Envelope]``, gives the SDK's method for it (timserver.client).
COMMANDS: tuple[Command[Any, Any], ...] = (
    ACCOUNT_IMPORT := Command(
        LOGIN_SVC, "account_import", "Import one account",
        request=m.AccountImportRequest, response=m.Envelope, handler="account_import",
        default_rate=200, max_items=1,
        sample={"UserID": "test", "Nick": "test", "FaceUrl": "http://www.qq.com"},
        errors=(40601, 70398), user_ids=(UserIDs("UserID", array=False),),
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
        user_ids=(UserIDs("Accounts"), UserIDs("AccountList", "UserID")),
        items=FailList("FailAccounts"),
    ),
    ACCOUNT_DELETE := Command(
        LOGIN_SVC, "account_delete", "Delete up to 100 accounts",
        request=m.AccountDeleteRequest, response=m.AccountDeleteResponse,
        handler="account_delete", default_rate=100, max_items=100,
        sample={"DeleteItem": [{"UserID": "UserID_1"}, {"UserID": "UserID_2"}]},
        errors=(71000,), user_ids=(UserIDs("DeleteItem", "UserID"),),
        items=ResultList("ResultItem", lambda uid, code, info: m.DeleteResultItem(
            ResultCode=code, ResultInfo=info, UserID=uid)),
    ),
    ACCOUNT_CHECK := Command(
        LOGIN_SVC, "account_check", "Query whether up to 100 accounts are imported",
        request=m.AccountCheckRequest, response=m.AccountCheckResponse,
        handler="account_check", default_rate=100, max_items=100,
        sample={"CheckItem": [{"UserID": "UserID_1"}, {"UserID": "UserID_2"}]},
        user_ids=(UserIDs("CheckItem", "UserID"),),
        items=ResultList("ResultItem", lambda uid, code, info: m.CheckResultItem(
            UserID=uid, ResultCode=code, ResultInfo=info, AccountStatus="NotImported")),
    ),
    KICK := Command(
        LOGIN_SVC, "kick", "Invalidate an account's login state (earlier UserSigs)",
        request=m.KickRequest, response=m.Envelope, handler="kick",
        default_rate=200, max_items=1, sample={"UserID": "test"}, errors=(70107,),
        user_ids=(UserIDs("UserID", array=False),),
    ),
    QUERY_ONLINE_STATUS := Command(
        OPENIM, "query_online_status", "Query the login status of up to 500 accounts",
        request=m.QueryOnlineStatusRequest, response=m.QueryOnlineStatusResponse,
        handler="query_online_status", default_rate=200, max_items=500, sample=_STATUS_SAMPLE,
        errors=(70107, 90001, 90003, 90011), body_codes=OPENIM_BODY,
        user_ids=_TO_ACCOUNT, items=_STATUS_ITEMS,
    ),
    QUERYSTATE := Command(
        OPENIM, "querystate", "Query the login status of up to 500 accounts (legacy path)",
        request=m.QueryOnlineStatusRequest, response=m.QueryStateResponse,
        handler="querystate", default_rate=100, max_items=500, sample=_STATUS_SAMPLE,
        errors=(70107, 90001, 90003, 90011), body_codes=OPENIM_BODY,
        user_ids=_TO_ACCOUNT, items=_STATUS_ITEMS,
    ),
    PORTRAIT_GET := Command(
        PROFILE, "portrait_get", "Read the nickname and avatar of up to 100 accounts",
        request=m.PortraitGetRequest, response=m.PortraitGetResponse,
        handler="portrait_get", default_rate=200, max_items=100,
        sample={"To_Account": ["id1"], "TagList": [m.NICK_TAG, m.IMAGE_TAG]},
        errors=(40001, 40002, 40003, 40009), body_codes=PROFILE_BODY, fail_fields=PROFILE_FAIL,
        user_ids=_TO_ACCOUNT,
        items=ResultList("UserProfileItem", lambda uid, code, info: m.UserProfile(
            To_Account=uid, ProfileItem=[], ResultCode=code, ResultInfo=info),
            fail_list="Fail_Account"),
    ),
    PORTRAIT_SET := Command(
        PROFILE, "portrait_set", "Set an account's nickname or avatar",
        request=m.PortraitSetRequest, response=m.PortraitSetResponse,
        handler="portrait_set", default_rate=200, max_items=10,
        sample={"From_Account": "id1",
                "ProfileItem": [{"Tag": m.NICK_TAG, "Value": "MyNickName"}]},
        errors=(40001, 40003, 40009, 40601, 40610), body_codes=PROFILE_BODY,
        fail_fields=PROFILE_FAIL, user_ids=(UserIDs("From_Account", array=False),),
    ),
)

BY_PATH: dict[tuple[str, str], Command] = {(c.service, c.name): c for c in COMMANDS}
BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
DEFAULT_RATES: dict[str, int] = {c.name: c.default_rate for c in COMMANDS}
