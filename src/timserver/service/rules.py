"""What makes a UserID and a profile field valid (docs/protocol.md §7.7)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from msgspec import UNSET

MAX_USERID_BYTES = 32
MAX_PROFILE_BYTES = 500
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (C0 or DEL), which no UserID may."""
    return _CONTROL.search(text) is not None


def userid_problem(user_id: str) -> str | None:
    """Why ``user_id`` is not a valid UserID (docs/protocol.md §7.7), or None when it is valid."""
    if not user_id:
        return "it is empty"
    size = len(user_id.encode("utf-8"))
    if size > MAX_USERID_BYTES:
        return f"it is {size} bytes long in UTF-8; at most {MAX_USERID_BYTES} are allowed"
    if not user_id.isprintable() and has_control(user_id):  # printable text holds none: no search
        return "it contains a control character"
    return None


def userid_problems(user_ids: Sequence[str]) -> list[str | None]:
    """``userid_problem`` of each; for a batch of usual UserIDs (printable ASCII, 1 to 32
    characters) at once, in a few C calls instead of one Python call each."""
    if user_ids:
        joined = "".join(user_ids)
        if joined.isascii() and joined.isprintable():
            sizes = set(map(len, user_ids))  # ASCII: characters are bytes
            if 0 not in sizes and max(sizes) <= MAX_USERID_BYTES:
                return [None] * len(user_ids)
    return [userid_problem(uid) for uid in user_ids]


def profile_problem(name: str, value: Any) -> str | None:
    """Why a Nick/FaceUrl value cannot be stored, or None (UNSET means absent: fine)."""
    if value is UNSET:
        return None
    if type(value) is not str:
        return f"{name} must be a string"
    size = len(value.encode("utf-8"))
    if size > MAX_PROFILE_BYTES:
        return f"{name} is {size} bytes long; at most {MAX_PROFILE_BYTES} are allowed"
    if "\x00" in value:  # PostgreSQL cannot store it: every backend refuses it alike
        return f"{name} contains a NUL character (U+0000), which cannot be stored"
    return None
