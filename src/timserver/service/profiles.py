"""``profile/portrait_get`` and ``portrait_set``: the standard nickname and avatar
(docs/protocol.md §11.4), the same stored values as the import commands' Nick and FaceUrl."""

from __future__ import annotations

from typing import Any

from ..protocol import messages as m
from ..protocol.errors import TimError
from ..storage import App, Storage
from .clock import Clock
from .events import PORTRAIT_SET, REST_PLATFORM, EventSink, caller, event, millis
from .rules import MAX_PROFILE_BYTES, userid_problem, userid_problems

NOT_FOUND_INFO = "Err_Profile_Account_Not_Exist: this UserID is not an account of the app."


def _tag_check(tags: list[str]) -> None:
    unknown = next((tag for tag in tags if tag not in m.PROFILE_TAGS), None)
    if unknown is not None:
        raise TimError(40009, f"Profile tag {unknown!r} is not one timserver stores: use "
                              f"{' or '.join(m.PROFILE_TAGS)}.")


def _value_problem(tag: str, value: Any) -> tuple[int, str] | None:
    if type(value) is not str:
        return 40610, f"The Value of {tag} must be a string."
    size = len(value.encode("utf-8"))
    if size > MAX_PROFILE_BYTES:
        return 40601, f"The Value of {tag} is {size} bytes long; at most {MAX_PROFILE_BYTES} " \
                      "are allowed."
    if "\x00" in value:  # PostgreSQL cannot store it: every backend refuses it alike
        return 40001, f"The Value of {tag} contains a NUL character (U+0000)."
    return None


class ProfileService:
    def __init__(self, storage: Storage, clock: Clock, events: EventSink | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.events = events

    async def portrait_get(self, app: App, req: m.PortraitGetRequest) -> m.PortraitGetResponse:
        _tag_check(req.TagList)
        ids = req.To_Account
        valid = [uid for uid, problem in zip(ids, userid_problems(ids), strict=True)
                 if not problem]
        stored = await self.storage.profiles(app.sdkappid, valid)
        items, failed = [], []
        for uid in ids:
            profile = stored.get(uid)
            if profile is None:
                failed.append(uid)
                items.append(m.UserProfile(To_Account=uid, ProfileItem=[], ResultCode=40003,
                                           ResultInfo=NOT_FOUND_INFO))
                continue
            values = dict(zip(m.PROFILE_TAGS, profile, strict=True))
            items.append(m.UserProfile(
                To_Account=uid, ResultCode=0, ResultInfo="",
                ProfileItem=[m.ProfileValue(Tag=tag, Value=values[tag] or "")
                             for tag in req.TagList]))
        return m.PortraitGetResponse(UserProfileItem=items,
                                     Fail_Account=failed if failed else m.UNSET)

    async def portrait_set(self, app: App, req: m.PortraitSetRequest) -> m.PortraitSetResponse:
        _tag_check([item.Tag for item in req.ProfileItem])
        fields: dict[str, str] = {}
        for item in req.ProfileItem:
            problem = _value_problem(item.Tag, item.Value)
            if problem is not None:
                raise TimError(*problem)
            fields[item.Tag] = item.Value
        user_id = req.From_Account
        if userid_problem(user_id) or not await self.storage.set_profile(
                app.sdkappid, user_id, fields.get(m.NICK_TAG), fields.get(m.IMAGE_TAG)):
            raise TimError(40003, f"From_Account {user_id!r} is not an account of this app: "
                                  "import it first.")
        if self.events is not None:
            body = {"CallbackCommand": PORTRAIT_SET, "Operator_Account": caller(),
                    "From_Account": user_id, "EventTime": millis(self.clock.now(app.sdkappid)),
                    "ProfileItem": [{"Tag": item.Tag, "Value": item.Value}
                                    for item in req.ProfileItem]}
            self.events.emit(app, event(PORTRAIT_SET, user_id, body, REST_PLATFORM))
        return m.PortraitSetResponse()
