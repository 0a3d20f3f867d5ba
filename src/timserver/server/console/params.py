"""Query parameters and body fields of the extension endpoints, checked with Tencent's codes."""

from __future__ import annotations

from typing import Any

from ...protocol.errors import TimError
from ...service.rules import has_control

MAX_SMALL_BODY = 32 * 1024  # sign / explain / kick: a few hundred bytes in practice


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise TimError(70402, f"Invalid parameters: {name} must be an integer from {low} to "
                              f"{high}.")
    return int(raw)


def text_param(params: dict[str, str], name: str, max_chars: int = 128) -> str:
    value = params.get(name, "")
    if len(value) > max_chars:
        raise TimError(70402, f"Invalid parameters: {name} is longer than {max_chars} "
                              "characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TimError(70402, f"Invalid parameters: {name} is not valid UTF-8.") from None
    if has_control(value):  # no UserID has one, and PostgreSQL refuses NUL in text (70500)
        raise TimError(70402, f"Invalid parameters: {name} contains a control character.")
    return value


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if type(value) is not kind:  # bool is not an int here
        what = "is missing" if name not in body else "has the wrong type"
        expected = {int: "an integer", bool: "true or false"}.get(kind, "a string")
        raise TimError(70402, f"Invalid parameters: {name} {what} (expected {expected}).")
    return value
