"""What a failed call raises: one base class, one subclass per way of failing."""

from __future__ import annotations

from ..protocol.errors import CATALOGUE, RETRYABLE_CODES


class TimClientError(Exception):
    """Base class of the SDK's errors; ``command`` names the REST command that failed."""

    def __init__(self, message: str, *, command: str) -> None:
        super().__init__(message)
        self.command = command


class ApiError(TimClientError):
    """The server answered ``ActionStatus: FAIL`` (after any retries): its ErrorCode and ErrorInfo.

    On a 60007 that carried throttle hints (``timserver serve --throttle-hints``; Tencent sends
    none), ``retry_after`` is the seconds the server said to wait and ``rate_limit`` the limit it
    named (calls per second); both are ``None`` otherwise.
    """

    def __init__(self, code: int, info: str, *, command: str, attempts: int = 1,
                 retry_after: float | None = None, rate_limit: int | None = None) -> None:
        super().__init__(f"{command}: ErrorCode {code}: {info}", command=command)
        self.code = code
        self.info = info
        self.attempts = attempts
        self.retry_after = retry_after
        self.rate_limit = rate_limit

    @property
    def name(self) -> str:
        """The catalogue's name of the code (``RATE_LIMITED``, ...), or ``""`` if unknown."""
        spec = CATALOGUE.get(self.code)
        return spec.name if spec else ""

    @property
    def retryable(self) -> bool:
        """True for the codes docs/protocol.md §6.3 says to retry (the client already did, up to its limit)."""
        return self.code in RETRYABLE_CODES


class NetworkError(TimClientError):
    """No usable answer: the connection failed or timed out, or the HTTP layer answered an error.

    ``status_code`` is the HTTP status when there was one (a gateway's 502, say), else ``None``.
    The message never contains the request URL (it carries the UserSig).
    """

    def __init__(self, reason: str, *, command: str, status_code: int | None = None,
                 attempts: int = 1, retryable: bool = True) -> None:
        super().__init__(f"{command}: {reason}", command=command)
        self.reason = reason
        self.status_code = status_code
        self.attempts = attempts
        self.retryable = retryable
