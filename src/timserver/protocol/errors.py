"""The error catalogue: every ErrorCode timserver can answer, with what it means.

One table, used by the server (ErrorInfo texts), the console (meaning of a code), the SDK
(which codes are worth a retry) and the docs. Codes and meanings follow Tencent's public
tables (docs/protocol.md §6); the sentences are ours, written so that a person knows what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: int
    name: str
    meaning: str  # default ErrorInfo: what went wrong and what to do
    retryable: bool = False


_CATALOGUE: tuple[ErrorSpec, ...] = (
    # Public REST framework codes (docs/protocol.md §6.1).
    ErrorSpec(60002, "HTTP_PARSE_ERROR",
              "HTTP parse error: check the request URL format and its query parameters."),
    ErrorSpec(60003, "JSON_PARSE_ERROR",
              "The request body is not valid JSON: send a UTF-8 JSON object as the POST body."),
    ErrorSpec(60004, "ACCOUNT_OR_SIG_MISSING",
              "The identifier or usersig query parameter is missing or empty: "
              "set identifier to an app admin and usersig to that admin's UserSig."),
    ErrorSpec(60006, "SDKAPPID_INVALID",
              "The sdkappid query parameter is not a known SDKAppID: check it."),
    ErrorSpec(60007, "RATE_LIMITED",
              "REST API call frequency over the limit for this command: slow down and retry later.",
              retryable=True),
    ErrorSpec(60008, "TIMEOUT_OR_BAD_REQUEST",
              "Service timeout or malformed HTTP request: check the request and retry.",
              retryable=True),
    ErrorSpec(60009, "UNKNOWN_RESOURCE",
              "Requested resource error: no such servicename/command, check the request URL."),
    ErrorSpec(60010, "ADMIN_REQUIRED",
              "This request requires app admin permission: set identifier to an app admin."),
    ErrorSpec(60012, "SDKAPPID_MISSING",
              "The REST API call must carry an SDKAppID: add sdkappid to the URL."),
    ErrorSpec(60015, "ACCOUNT_TYPE_ERROR",
              "Account type error: a UserID must be a JSON string, not a number."),
    # Account and UserSig codes (docs/protocol.md §6.2).
    ErrorSpec(70001, "USERSIG_EXPIRED",
              "The UserSig has expired: generate a new one (a validity of 24 hours or more "
              "is recommended)."),
    ErrorSpec(70002, "USERSIG_EMPTY", "The UserSig is empty: pass a UserSig in usersig."),
    ErrorSpec(70003, "USERSIG_INVALID",
              "The UserSig is invalid and cannot be parsed: generate it with the official "
              "TLSSigAPIv2 algorithm."),
    ErrorSpec(70005, "USERSIG_KICKED",
              "The UserSig was issued before this identifier's login state was invalidated "
              "(kick): generate a new UserSig."),
    ErrorSpec(70009, "USERSIG_VERIFY_FAILED",
              "UserSig verification failed: it was probably signed with another key; sign it "
              "with this app's secret key."),
    ErrorSpec(70013, "USERSIG_IDENTIFIER_MISMATCH",
              "The identifier in the request does not match the identifier in the UserSig."),
    ErrorSpec(70014, "USERSIG_SDKAPPID_MISMATCH",
              "The sdkappid in the request does not match the SDKAppID in the UserSig."),
    ErrorSpec(70107, "ACCOUNT_NOT_FOUND",
              "The requested UserID does not exist: import it first."),
    ErrorSpec(70169, "SERVER_TIMEOUT",
              "Server timeout: the request could not be served within its deadline; retry.",
              retryable=True),
    ErrorSpec(70202, "SERVER_TIMEOUT_2", "Server timeout: retry.", retryable=True),
    ErrorSpec(70206, "BATCH_QUANTITY_INVALID", "Invalid batch quantity in the request."),
    ErrorSpec(70398, "ACCOUNT_LIMIT_REACHED",
              "Number of accounts over the limit of this app's edition (trial: 100): "
              "upgrade the edition or delete accounts."),
    ErrorSpec(70402, "INVALID_PARAMETERS",
              "Invalid parameters: a required field is missing or does not follow the protocol."),
    ErrorSpec(70403, "ADMIN_PERMISSION_REQUIRED",
              "Request failed: app admin permission required; set identifier to an app admin."),
    ErrorSpec(70500, "INTERNAL_ERROR", "Internal server error: retry.", retryable=True),
    ErrorSpec(71000, "DELETE_NOT_ALLOWED",
              "Account deletion failed: only apps on the trial (or developer) edition can "
              "delete accounts."),
    ErrorSpec(70399, "ACCOUNT_DELETED_RECENTLY",
              "This UserID was deleted from this pro-edition app less than 90 days ago and "
              "cannot be imported again yet."),
    # Online status codes (openim, docs/protocol.md §11.1).
    ErrorSpec(90001, "OPENIM_JSON_PARSE_FAILED",
              "The body is not a JSON object with a non-empty To_Account array of UserIDs: "
              "fix the body."),
    ErrorSpec(90003, "OPENIM_ACCOUNT_NOT_STRING",
              "An element of To_Account is not a string: every UserID must be a JSON string."),
    ErrorSpec(90009, "OPENIM_ADMIN_REQUIRED",
              "This request requires app admin permission."),
    ErrorSpec(90011, "OPENIM_TOO_MANY_ACCOUNTS",
              "To_Account names more than 500 accounts: split the query."),
    # Profile codes (docs/protocol.md §11.4).
    ErrorSpec(40001, "PROFILE_BAD_REQUEST",
              "Err_Profile_Comm_Decode_Fail: the request body or one of its fields is invalid."),
    ErrorSpec(40002, "PROFILE_ACCOUNT_MISSING",
              "To_Account is missing or empty: name the accounts whose profile to read."),
    ErrorSpec(40003, "PROFILE_ACCOUNT_NOT_FOUND",
              "The account does not exist: import it first."),
    ErrorSpec(40006, "PROFILE_INTERNAL_ERROR", "Internal error of the profile service: retry.",
              retryable=True),
    ErrorSpec(40009, "PROFILE_TAG_UNKNOWN",
              "A profile tag is not one timserver stores: use Tag_Profile_IM_Nick or "
              "Tag_Profile_IM_Image."),
    ErrorSpec(40601, "PROFILE_VALUE_TOO_LONG",
              "A profile field (Nick or FaceUrl) is longer than 500 bytes."),
    ErrorSpec(40610, "PROFILE_VALUE_TYPE",
              "A profile Value has the wrong type: Tag_Profile_IM_Nick and Tag_Profile_IM_Image "
              "take strings."),
)

CATALOGUE: dict[int, ErrorSpec] = {spec.code: spec for spec in _CATALOGUE}

#: Codes a client should retry with backoff (docs/protocol.md §6.3).
RETRYABLE_CODES: frozenset[int] = frozenset(s.code for s in _CATALOGUE if s.retryable)

#: Tencent's literal ErrorInfo of 90001 (docs/protocol.md §11.1).
OPENIM_PARSE_INFO = "Fail to Parse json data of body, Please check it"

#: Tencent's literal per-item ResultInfo for a UserID that does not exist (docs/protocol.md §7.3).
ACCOUNT_NOT_EXIST_INFO = "Err_TLS_PT_Open_Login_Account_Not_Exist"


def meaning(code: int) -> str:
    spec = CATALOGUE.get(code)
    return spec.meaning if spec else f"Error {code}."


class TimError(Exception):
    """A failure that the wire answers as ``ActionStatus: FAIL`` with ``code``.

    Raised anywhere below the wire (protocol validation, the service); ``info`` overrides the
    catalogue's sentence when a more precise one helps the caller.
    """

    def __init__(self, code: int, info: str | None = None) -> None:
        self.code = code
        self.info = info or meaning(code)
        super().__init__(f"{code}: {self.info}")
