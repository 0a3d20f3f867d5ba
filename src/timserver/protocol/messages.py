"""Request and response bodies of the REST commands, as typed structs.

Field names, nesting and the order of keys in answers follow Tencent's documented samples
(docs/protocol.md §7) byte for byte. Three markers tell the request validator (``validate.py``) how
Tencent treats a field; they also document the field in the OpenAPI schema:

* ``UserIDField``: a UserID; a JSON number here is refused with 60015, any other non-string
  with 70402. Whether the string is a *valid* UserID is an account rule (``service``).
* ``PerItemStr``: a string checked per item inside a batch: a bad value fails that item only.
* plain ``str``: must be a string, or the call fails with 70402.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

USERID_DOC = ("A UserID: a non-empty string of at most 32 bytes in UTF-8, no control "
              "characters; case-sensitive.")
PROFILE_DOC = "Optional profile field, a string of at most 500 bytes."

UserIDField = Annotated[str, Meta(description=USERID_DOC, extra={"tim": "userid"})]
PerItemStr = Annotated[str, Meta(description=PROFILE_DOC, extra={"tim": "per_item"})]
ProfileStr = Annotated[str, Meta(description=PROFILE_DOC)]


class Envelope(Struct, kw_only=True):
    """The three fields every answer carries (docs/protocol.md §3)."""

    ActionStatus: str = "OK"
    ErrorInfo: str = ""
    ErrorCode: int = 0


class ErrorResponse(Struct):
    ActionStatus: str
    ErrorInfo: str
    ErrorCode: int


# --- account_import / kick: one account --------------------------------------------------------


class AccountImportRequest(Struct, kw_only=True):
    UserID: Annotated[UserIDField, Meta(extra={"tim": "userid", "alias": "Identifier"})]
    Nick: ProfileStr | UnsetType = UNSET
    FaceUrl: ProfileStr | UnsetType = UNSET


class KickRequest(Struct, kw_only=True):
    UserID: Annotated[UserIDField, Meta(extra={"tim": "userid", "alias": "Identifier"})]


# --- multiaccount_import ----------------------------------------------------------------------


class AccountListItem(Struct, kw_only=True):
    UserID: UserIDField
    Nick: PerItemStr | UnsetType = UNSET
    FaceUrl: PerItemStr | UnsetType = UNSET


class MultiAccountImportRequest(Struct, kw_only=True):
    """Exactly one of ``Accounts`` (old format) and ``AccountList`` (2024 format)."""

    Accounts: list[UserIDField] | UnsetType = UNSET
    AccountList: list[AccountListItem] | UnsetType = UNSET


class MultiAccountImportResponse(Struct, kw_only=True, dict=True):
    """On the wire, exactly Tencent's four fields. The service also says why each UserID of
    ``FailAccounts`` failed, in an attribute that is not a field (never encoded): read it with
    ``fail_reasons`` (the console's import shows it)."""

    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""
    FailAccounts: list[str]


def fail_reasons(response: MultiAccountImportResponse) -> dict[str, str]:
    """Why each failed UserID failed, for people (empty when the answer was decoded from JSON)."""
    return getattr(response, "reasons", {})


# --- account_delete / account_check -----------------------------------------------------------


class UserRef(Struct, kw_only=True):
    UserID: UserIDField


class AccountDeleteRequest(Struct, kw_only=True):
    DeleteItem: list[UserRef]


class DeleteResultItem(Struct, kw_only=True):
    ResultCode: int
    ResultInfo: str
    UserID: str


class AccountDeleteResponse(Struct, kw_only=True):
    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""
    ResultItem: list[DeleteResultItem]


class AccountCheckRequest(Struct, kw_only=True):
    CheckItem: list[UserRef]


class CheckResultItem(Struct, kw_only=True):
    UserID: str
    ResultCode: int
    ResultInfo: str
    AccountStatus: Annotated[str, Meta(extra_json_schema={"enum": ["Imported", "NotImported"]})]


class AccountCheckResponse(Struct, kw_only=True):
    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""
    ResultItem: list[CheckResultItem]


# --- openim/query_online_status and the legacy openim/querystate (docs/protocol.md §11.1) ------

PLATFORMS = ("iPhone", "Android", "Web", "PC", "iPad", "Mac")
STATUSES = ("Online", "PushOnline", "Offline")
Flag = Annotated[int, Meta(description="0 or 1.")]


class QueryOnlineStatusRequest(Struct, kw_only=True):
    To_Account: list[UserIDField]
    IsNeedDetail: Flag | UnsetType = UNSET
    IsReturnInstid: Flag | UnsetType = UNSET
    IsReturnCustomStatus: Flag | UnsetType = UNSET


class DeviceStatus(Struct, kw_only=True):
    Platform: Annotated[str, Meta(extra_json_schema={"enum": list(PLATFORMS)})]
    Status: Annotated[str, Meta(extra_json_schema={"enum": list(STATUSES[:2])})]
    InstId: int | UnsetType = UNSET  # with IsReturnInstid: 1


class OnlineStatusItem(Struct, kw_only=True):
    To_Account: str
    Status: Annotated[str, Meta(extra_json_schema={"enum": list(STATUSES)})]
    Detail: list[DeviceStatus] | UnsetType = UNSET  # with IsNeedDetail: 1


class QueryStateItem(Struct, kw_only=True):
    """``querystate`` spells the account's status ``State``; nothing else differs."""

    To_Account: str
    State: Annotated[str, Meta(extra_json_schema={"enum": list(STATUSES)})]
    Detail: list[DeviceStatus] | UnsetType = UNSET


class AccountError(Struct, kw_only=True):
    To_Account: str
    ErrorCode: int


class QueryOnlineStatusResponse(Struct, kw_only=True):
    ActionStatus: str = "OK"
    ErrorInfo: str = ""
    ErrorCode: int = 0
    QueryResult: list[OnlineStatusItem]
    ErrorList: list[AccountError]


class QueryStateResponse(Struct, kw_only=True):
    ActionStatus: str = "OK"
    ErrorInfo: str = ""
    ErrorCode: int = 0
    QueryResult: list[QueryStateItem]
    ErrorList: list[AccountError]


# --- profile/portrait_get and portrait_set (docs/protocol.md §11.4) -----------------------------

NICK_TAG = "Tag_Profile_IM_Nick"
IMAGE_TAG = "Tag_Profile_IM_Image"
PROFILE_TAGS = (NICK_TAG, IMAGE_TAG)
PerItemValue = Annotated[str, Meta(description="A string of at most 500 bytes.",
                                   extra={"tim": "per_item"})]


class PortraitGetRequest(Struct, kw_only=True):
    To_Account: list[UserIDField]
    TagList: list[Annotated[str, Meta(extra_json_schema={"enum": list(PROFILE_TAGS)})]]


class ProfileValue(Struct, kw_only=True):
    Tag: str
    Value: str


class UserProfile(Struct, kw_only=True):
    To_Account: str
    ProfileItem: list[ProfileValue]
    ResultCode: int
    ResultInfo: str


class PortraitGetResponse(Struct, kw_only=True):
    UserProfileItem: list[UserProfile]
    Fail_Account: list[str] | UnsetType = UNSET  # only when some account failed
    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""
    ErrorDisplay: str = ""


class ProfileItemIn(Struct, kw_only=True):
    Tag: str
    Value: PerItemValue  # any JSON value reaches the service, which answers 40610 for a non-string


class PortraitSetRequest(Struct, kw_only=True):
    From_Account: UserIDField
    ProfileItem: list[ProfileItemIn]


class PortraitSetResponse(Struct, kw_only=True):
    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""
    ErrorDisplay: str = ""


_encoder = msgspec.json.Encoder()


def encode(message: Any) -> bytes:
    """Compact JSON, keys in declaration order, non-ASCII as UTF-8 (as Tencent answers)."""
    return _encoder.encode(message)

