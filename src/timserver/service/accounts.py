"""Account rules: the five ``im_open_login_svc`` commands (docs/protocol.md §7, §9, §11.5).

Each handler takes the app (already authenticated by the wire layer) and the command's request
struct, and returns the response struct; failures of the whole call raise ``TimError``.
Nothing here knows HTTP; storage is reached only through its interface.
"""

from __future__ import annotations

import time
from typing import Any

from ..protocol import messages as m
from ..protocol.errors import ACCOUNT_NOT_EXIST_INFO, TimError
from ..storage import AccountWrite, App, Storage
from .apps import max_accounts
from .clock import Clock
from .events import REST_PLATFORM
from .presence import PresenceService
from .rules import profile_problem, userid_problem, userid_problems

#: A UserID deleted from a pro app cannot be imported again for this long (the app's clock).
DELETION_BAN_SECONDS = 90 * 86400


def _opt(value: Any) -> str | None:
    return None if value is m.UNSET else value


class AccountService:
    def __init__(self, storage: Storage, clock: Clock,
                 presence: PresenceService | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.presence = presence or PresenceService(storage, clock)

    @staticmethod
    def _cap(app: App) -> int | None:
        return max_accounts(app)

    async def _banned(self, app: App, user_ids: list[str]) -> dict[str, float]:
        """UserIDs deleted from this pro app that may not be imported yet (docs/protocol.md §11.5)."""
        if app.edition != "pro" or not user_ids:
            return {}
        return await self.storage.banned(app.sdkappid, user_ids, self.clock.now(app.sdkappid))

    # --- account_import -----------------------------------------------------------------------
    async def account_import(self, app: App, req: m.AccountImportRequest) -> m.Envelope:
        problem = userid_problem(req.UserID)
        if problem:
            raise TimError(70402, f"Invalid parameters: UserID {req.UserID!r} is invalid: {problem}.")
        for name in ("Nick", "FaceUrl"):
            problem = profile_problem(name, getattr(req, name))
            if problem:
                raise TimError(40601, f"{problem}.")
        until = (await self._banned(app, [req.UserID])).get(req.UserID)
        if until is not None:
            raise TimError(70399, f"The UserID {req.UserID!r} was {_ban_text(until)}")
        write = AccountWrite(req.UserID, _opt(req.Nick), _opt(req.FaceUrl))
        (applied,) = await self.storage.import_accounts(app.sdkappid, [write], self._cap(app))
        if not applied:
            raise TimError(70398, "Number of accounts over the limit: a trial app holds at most "
                                  f"{self._cap(app)} accounts; delete some or upgrade the edition.")
        return m.Envelope()

    # --- multiaccount_import ------------------------------------------------------------------
    async def multiaccount_import(self, app: App,
                                  req: m.MultiAccountImportRequest) -> m.MultiAccountImportResponse:
        # each failed UserID once, first failure first, with why (not on the wire: the console)
        failed: dict[str, str] = {}
        writes: list[AccountWrite] = []
        if req.Accounts is not m.UNSET:
            for uid in req.Accounts:  # old format: never touches profile fields
                problem = userid_problem(uid)
                if problem:
                    failed.setdefault(uid, f"UserID is invalid: {problem}.")
                else:
                    writes.append(AccountWrite(uid))
        else:
            for item in req.AccountList:
                problem = userid_problem(item.UserID)
                if problem:
                    failed.setdefault(item.UserID, f"UserID is invalid: {problem}.")
                    continue
                problem = (profile_problem("Nick", item.Nick)
                           or profile_problem("FaceUrl", item.FaceUrl))
                if problem:
                    failed.setdefault(item.UserID, f"{problem}.")
                else:
                    writes.append(AccountWrite(item.UserID, _opt(item.Nick), _opt(item.FaceUrl)))
        banned = await self._banned(app, [w.user_id for w in writes])
        if banned:
            for write in writes:
                if write.user_id in banned:
                    failed.setdefault(write.user_id,
                                     f"It was {_ban_text(banned[write.user_id])[:-1]} (70399).")
            writes = [w for w in writes if w.user_id not in banned]
        if writes:
            applied = await self.storage.import_accounts(app.sdkappid, writes, self._cap(app))
            for write, ok in zip(writes, applied, strict=True):
                if not ok:
                    failed.setdefault(write.user_id, "The app's edition allows no more "
                                                     "accounts (70398).")
        answer = m.MultiAccountImportResponse(FailAccounts=list(failed))
        answer.reasons = failed  # type: ignore[attr-defined]  # not a field: never encoded
        return answer

    # --- account_delete -----------------------------------------------------------------------
    async def account_delete(self, app: App,
                             req: m.AccountDeleteRequest) -> m.AccountDeleteResponse:
        if app.edition == "pro" and not app.allow_delete:
            raise TimError(71000, "Account deletion failed: deletion is switched off for this "
                                  "pro-edition app (timserver app allow-delete N on switches it "
                                  "on); use kick to deactivate an account instead.")
        banned_until = (self.clock.now(app.sdkappid) + DELETION_BAN_SECONDS
                        if app.edition == "pro" else None)
        ids = [item.UserID for item in req.DeleteItem]
        results: list[m.DeleteResultItem | None] = []
        to_delete: list[str] = []
        admins = set(app.admins)
        for uid in ids:
            problem = userid_problem(uid)
            if problem:
                results.append(m.DeleteResultItem(
                    ResultCode=70402, ResultInfo=f"UserID is invalid: {problem}.", UserID=uid))
            elif uid in admins:
                results.append(m.DeleteResultItem(
                    ResultCode=70402, ResultInfo="This UserID is an app admin; admin accounts "
                                                 "cannot be deleted.", UserID=uid))
            else:
                results.append(None)
                to_delete.append(uid)
        deleted = iter(await self.storage.delete_accounts(app.sdkappid, to_delete, banned_until))
        items = [r if r is not None else
                 (m.DeleteResultItem(ResultCode=0, ResultInfo="", UserID=uid) if next(deleted)
                  else m.DeleteResultItem(ResultCode=70107, ResultInfo=ACCOUNT_NOT_EXIST_INFO,
                                          UserID=uid))
                 for uid, r in zip(ids, results, strict=True)]
        return m.AccountDeleteResponse(ResultItem=items)

    # --- account_check ------------------------------------------------------------------------
    async def account_check(self, app: App, req: m.AccountCheckRequest) -> m.AccountCheckResponse:
        ids = [item.UserID for item in req.CheckItem]
        problems = userid_problems(ids)
        imported = await self.storage.existing(
            app.sdkappid, [uid for uid, problem in zip(ids, problems, strict=True) if not problem])
        item = m.CheckResultItem
        return m.AccountCheckResponse(ResultItem=[
            item(UserID=uid, ResultCode=0, ResultInfo="",
                 AccountStatus="Imported" if uid in imported else "NotImported")
            if not problem else
            item(UserID=uid, ResultCode=70402, ResultInfo=f"UserID is invalid: {problem}.",
                 AccountStatus="NotImported")
            for uid, problem in zip(ids, problems, strict=True)])

    # --- kick ---------------------------------------------------------------------------------
    async def kick(self, app: App, req: m.KickRequest) -> m.Envelope:
        problem = userid_problem(req.UserID)
        if problem:
            raise TimError(70402, f"Invalid parameters: UserID {req.UserID!r} is invalid: {problem}.")
        # TLS.time has whole seconds: every sig signed in this second or before is refused.
        if not await self.storage.kick(app.sdkappid, req.UserID, int(self.clock.latest(app.sdkappid))):
            raise TimError(70107, f"The UserID {req.UserID!r} does not exist in this app: "
                                  "import it before kicking it.")
        await self.presence.kicked(app, req.UserID, REST_PLATFORM)  # every device logged out
        return m.Envelope()


def _ban_text(until: float) -> str:
    """Why a deleted UserID cannot be imported yet (docs/protocol.md §11.5)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
    return (f"deleted from this pro-edition app less than 90 days ago: it can be imported "
            f"again from {when} (app clock).")
