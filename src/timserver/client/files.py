"""Account files for SDK users: the one reader is ``timserver.accountfiles`` (neutral, so that
the emulator's ``--seed`` reads through it too without importing the SDK)."""

from __future__ import annotations

from ..accountfiles import (
    Account,
    InputError,
    OnBad,
    iter_accounts,
    iter_numbered_accounts,
    open_accounts,
    parse_accounts,
    read_accounts,
)

__all__ = ["Account", "InputError", "OnBad", "iter_accounts", "iter_numbered_accounts",
           "open_accounts", "parse_accounts", "read_accounts"]
