"""Python SDK for the Tencent Cloud IM account REST API: timserver or Tencent's own endpoint.

    from timserver.client import Client

    with Client(1400000000, KEY, "administrator", "http://127.0.0.1:8080") as im:
        im.account_import(UserID="alice", Nick="Alice")
        answer = im.account_check(CheckItem=[{"UserID": "alice"}])
        print(answer.ResultItem[0].AccountStatus)           # Imported
        results = im.import_accounts(f"user_{n}" for n in range(1000))

One method per REST command (from the command table, protocol/commands.py), bulk helpers in
batches of 100, bulk jobs that resume after an interruption (``jobs.run``), UserSigs signed and
renewed, pacing to each command's rate limit, retries with backoff on the retryable codes. See
docs/client.md.
"""

from ..protocol.errors import RETRYABLE_CODES
from . import jobs
from ._base import Stats
from ._exceptions import ApiError, NetworkError, TimClientError
from ._pacing import Pacer
from ._retry import NO_RETRY, Retry
from ._signing import Signer
from .aio import AsyncClient
from .bulk import Account, AccountResult
from .files import InputError, iter_accounts, open_accounts, parse_accounts, read_accounts
from .regions import REGIONS, Region, base_url
from .sync import Client

__all__ = [
    "NO_RETRY", "REGIONS", "RETRYABLE_CODES", "Account", "AccountResult", "ApiError",
    "AsyncClient", "Client", "InputError", "NetworkError", "Pacer", "Region", "Retry", "Signer",
    "Stats", "TimClientError", "base_url", "iter_accounts", "jobs", "open_accounts",
    "parse_accounts", "read_accounts",
]
