"""Tencent's answer envelope, and the one table from exception to ErrorCode.

Every answer of the server that is not a page or a file — /v4 calls, unknown paths, the
extension endpoints — is HTTP 200 with ``{"ActionStatus", "ErrorInfo", "ErrorCode", ...}``
built here (docs/protocol.md). ``as_failure`` decides what any exception becomes, so that no
path can answer anything else (never an HTTP 500, never a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ..protocol.errors import TimError
from ..storage import StorageError
from .hooks import BadInput

log = logging.getLogger("timserver.pipeline")

JSON_TYPE = "application/json; charset=utf-8"
#: Methods every route accepts, so that a wrong one is answered by the route (60008), not 405.
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
#: The CORS headers of Tencent's answers (docs/protocol.md, HTTP semantics).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "X-Requested-With",
    "Access-Control-Allow-Methods": "POST",
}
#: The headers of every /v4 answer, as ASGI wants them (Content-Length is added per answer).
ANSWER_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                  for name, value in {**CORS_HEADERS, "Content-Type": JSON_TYPE}.items()]

_encoder = msgspec.json.Encoder()


class Failure(msgspec.Struct):
    ActionStatus: str
    ErrorInfo: str
    ErrorCode: int


def fail(code: int, info: str, extra: dict[str, Any] | None = None) -> bytes:
    """A failed answer: ``{"ActionStatus":"FAIL","ErrorInfo":...,"ErrorCode":...}``, and a
    command's ``extra`` fields after them (the profile commands' ``ErrorDisplay``)."""
    if extra:
        return _encoder.encode({"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code,
                                **extra})
    return _encoder.encode(Failure("FAIL", info, code))


def ok(fields: dict[str, Any] | None = None) -> bytes:
    """A successful answer of an extension endpoint, with its own fields after the three."""
    return _encoder.encode({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                            **(fields or {})})


# --- what an exception becomes -------------------------------------------------------------------

#: What failed, by stage, in the words of ErrorInfo (timeout, database failure).
_STAGES = {
    "auth": ("the caller could not be authenticated within {deadline:g} s (the database is "
             "slow); retry.", "the database is unreachable; retry."),
    "handler": ("{what} could not be served within {deadline:g} s; retry.",
                "the database failed and nothing of this call was applied; retry."),
}


def as_failure(exc: BaseException, *, what: str = "the call", stage: str = "handler",
               deadline: float = 0.0) -> TimError:
    """The ErrorCode an exception answers; logs what a person must look at.

    ``TimError`` as it is; ``BadInput`` 70402; a deadline 70169; a storage or driver failure
    70500 with one log line (during an outage a traceback per call would flood the log);
    anything else 70500 with its traceback.
    """
    if isinstance(exc, TimError):
        return exc
    if isinstance(exc, BadInput):
        return TimError(70402, f"Invalid parameters: {exc}.")
    timeout_text, storage_text = _STAGES[stage]
    if isinstance(exc, TimeoutError):
        return TimError(70169, "Server timeout: " + timeout_text.format(what=what,
                                                                        deadline=deadline))
    if isinstance(exc, StorageError) or _is_driver_error(exc):
        log.warning("storage failed during %s: %s", what, _one_line(exc),
                    exc_info=log.isEnabledFor(logging.DEBUG))
        return TimError(70500, "Internal server error: " + storage_text)
    log.error("internal error in %s", what, exc_info=exc)
    return TimError(70500, "Internal server error: retry.")


def _is_driver_error(exc: BaseException) -> bool:
    """A database driver's own exception that reached the pipeline (storage should have wrapped
    it): asyncpg's, sqlite3's, redis's, or a socket error. Told by module, so that server/ needs
    none of the drivers."""
    module = type(exc).__module__
    return (isinstance(exc, OSError) or module.startswith(("asyncpg", "sqlite3", "redis"))
            or module == "_sqlite3")


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
