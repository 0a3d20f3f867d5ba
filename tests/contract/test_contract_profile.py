"""docs/protocol.md §11.4: `v4/profile/portrait_get` and `v4/profile/portrait_set` (the
standard Nick and avatar only, the same values as Nick / FaceUrl of the import commands).

App of this module (created at run time): `prof`, developer edition.
"""

import pytest
from contract_logins_support import IMAGE, NICK, PROFILE, new_apps, portrait_get, portrait_set, profile_of
from contract_support import ADMIN, App, build_sig, uid

pytestmark = pytest.mark.slow

ENVELOPE = {"ActionStatus", "ErrorInfo", "ErrorCode"}


@pytest.fixture(scope="module")
def prof(server, api):
    return new_apps(server, api, [App("prof", 1400001331, "developer", [ADMIN])])["prof"]


def fresh(api, app, **fields):
    u = uid("p")
    assert api.import_one(app, u, **fields).code == 0
    return u


def raw(api, app, command, body: bytes):
    return api.post(command, body, app, service=PROFILE)


# ------------------------------------------------------------------ portrait_get


def test_get_answers_import_values(api, prof):
    """docs/protocol.md §11.4: Tag_Profile_IM_Nick = Nick, Tag_Profile_IM_Image = FaceUrl of the
    import; the answer's shape as Tencent's, with ErrorDisplay "" and no Fail_Account."""
    u = fresh(api, prof, Nick="Ann", FaceUrl="http://img.example/a.png")
    r = portrait_get(api, prof, [u], [NICK, IMAGE])
    assert r.code == 0
    assert r["UserProfileItem"] == [
        {
            "To_Account": u,
            "ProfileItem": [{"Tag": NICK, "Value": "Ann"}, {"Tag": IMAGE, "Value": "http://img.example/a.png"}],
            "ResultCode": 0,
            "ResultInfo": "",
        }
    ]
    assert r["ErrorDisplay"] == ""
    assert "Fail_Account" not in r.data


def test_never_set_tag_is_empty_string(api, prof):
    """docs/protocol.md §11.4: a tag never set is returned with ""."""
    u = fresh(api, prof)
    assert profile_of(api, prof, u) == {NICK: "", IMAGE: ""}
    v = fresh(api, prof, Nick="only-nick")
    assert profile_of(api, prof, v) == {NICK: "only-nick", IMAGE: ""}


def test_items_follow_taglist_and_to_account(api, prof):
    """docs/protocol.md §11.4: ProfileItem lists the tags of TagList in its order;
    UserProfileItem follows To_Account."""
    u = fresh(api, prof, Nick="U", FaceUrl="fu")
    v = fresh(api, prof, Nick="V")
    r = portrait_get(api, prof, [v, u], [IMAGE, NICK])
    assert [i["To_Account"] for i in r["UserProfileItem"]] == [v, u]
    assert r["UserProfileItem"][0]["ProfileItem"] == [{"Tag": IMAGE, "Value": ""}, {"Tag": NICK, "Value": "V"}]
    assert r["UserProfileItem"][1]["ProfileItem"] == [{"Tag": IMAGE, "Value": "fu"}, {"Tag": NICK, "Value": "U"}]
    r = portrait_get(api, prof, [u], [NICK])
    assert r["UserProfileItem"][0]["ProfileItem"] == [{"Tag": NICK, "Value": "U"}]


def test_unknown_userid_40003_and_fail_account(api, prof):
    """docs/protocol.md §11.4: a UserID not imported: its item has ResultCode 40003 and a
    ResultInfo, and it is listed in Fail_Account; the others are answered."""
    u = fresh(api, prof, Nick="known")
    g1, g2 = uid("ghost"), uid("ghost")
    r = portrait_get(api, prof, [g1, u, g2])
    assert r.code == 0
    items = r["UserProfileItem"]
    assert [i["To_Account"] for i in items] == [g1, u, g2]
    for i in (items[0], items[2]):
        assert i["ResultCode"] == 40003, i
        assert isinstance(i["ResultInfo"], str) and i["ResultInfo"].strip(), i
    assert items[1]["ResultCode"] == 0 and items[1]["ResultInfo"] == ""
    assert {p["Tag"]: p["Value"] for p in items[1]["ProfileItem"]} == {NICK: "known", IMAGE: ""}
    assert r["Fail_Account"] == [g1, g2]


def test_deleted_account_is_40003(api, prof):
    """docs/protocol.md §11.4: a deleted account is no longer imported (40003)."""
    u = fresh(api, prof, Nick="gone")
    assert api.delete(prof, [u])["ResultItem"][0]["ResultCode"] == 0
    v = fresh(api, prof)
    r = portrait_get(api, prof, [u, v])
    assert r["UserProfileItem"][0]["ResultCode"] == 40003
    assert r["Fail_Account"] == [u]


def test_100_accounts_accepted(api, prof):
    """docs/protocol.md §11.4: To_Account takes up to 100 UserIDs."""
    u = fresh(api, prof)
    ghosts = [uid("g") for _ in range(99)]
    r = portrait_get(api, prof, [u, *ghosts])
    assert r.code == 0
    assert len(r["UserProfileItem"]) == 100
    assert r["Fail_Account"] == ghosts


def test_admin_is_an_account(api, prof):
    """docs/protocol.md §11.4 with §9 (admins are accounts too): an admin's profile can be read
    and set."""
    r = portrait_get(api, prof, [ADMIN])
    assert r.code == 0 and r["UserProfileItem"][0]["ResultCode"] == 0
    assert portrait_set(api, prof, ADMIN, [(NICK, "The Admin")]).code == 0
    assert profile_of(api, prof, ADMIN)[NICK] == "The Admin"


# ------------------------------------------------------------------ portrait_set


def test_set_answers_envelope_plus_error_display(api, prof):
    """docs/protocol.md §11.4: portrait_set answers the envelope plus "ErrorDisplay": ""."""
    u = fresh(api, prof)
    r = portrait_set(api, prof, u, [(NICK, "Bob")])
    assert r.code == 0
    assert set(r.data) - {"RequestId"} == ENVELOPE | {"ErrorDisplay"}
    assert r["ErrorDisplay"] == ""


def test_set_then_get_both_tags(api, prof):
    """docs/protocol.md §11.4: portrait_set writes Nick and avatar; portrait_get reads them."""
    u = fresh(api, prof, Nick="old", FaceUrl="old-url")
    assert portrait_set(api, prof, u, [(NICK, "新的昵称"), (IMAGE, "https://x.example/新.png")]).code == 0
    assert profile_of(api, prof, u) == {NICK: "新的昵称", IMAGE: "https://x.example/新.png"}
    assert portrait_set(api, prof, u, [(IMAGE, "")]).code == 0  # "" clears
    assert profile_of(api, prof, u) == {NICK: "新的昵称", IMAGE: ""}


def test_set_and_import_share_the_same_values(api, prof):
    """docs/protocol.md §11.4 with §7.7: portrait_set and the import commands write the same
    Nick / FaceUrl: an import leaves the fields it does not name, overwrites those it names;
    the old `Accounts` format touches neither."""
    u = fresh(api, prof)
    assert portrait_set(api, prof, u, [(NICK, "from-set"), (IMAGE, "img-set")]).code == 0
    assert api.import_one(prof, u).code == 0
    assert api.multi_import(prof, [u])["FailAccounts"] == []
    assert profile_of(api, prof, u) == {NICK: "from-set", IMAGE: "img-set"}
    assert api.import_one(prof, u, FaceUrl="img-import").code == 0
    assert profile_of(api, prof, u) == {NICK: "from-set", IMAGE: "img-import"}
    r = api.post("multiaccount_import", {"AccountList": [{"UserID": u, "Nick": "from-batch"}]}, prof)
    assert r["FailAccounts"] == []
    assert profile_of(api, prof, u) == {NICK: "from-batch", IMAGE: "img-import"}


def test_set_unknown_user_40003(api, prof):
    """docs/protocol.md §11.4: 40003, the account does not exist."""
    r = portrait_set(api, prof, uid("ghost"), [(NICK, "x")])
    assert r.code == 40003


@pytest.mark.parametrize(
    "value,code",
    [
        pytest.param("a" * 500, 0, id="500_ascii"),
        pytest.param("é" * 250, 0, id="500_bytes_utf8"),
        pytest.param("a" * 501, 40601, id="501_ascii"),
        pytest.param("é" * 250 + "a", 40601, id="501_bytes_utf8"),
    ],
)
@pytest.mark.parametrize("tag", [NICK, IMAGE])
def test_value_at_most_500_bytes(api, prof, tag, value, code):
    """docs/protocol.md §11.4: strings of at most 500 bytes (UTF-8); over -> 40601."""
    u = fresh(api, prof)
    r = portrait_set(api, prof, u, [(tag, value)])
    assert r.code == code
    assert profile_of(api, prof, u)[tag] == (value if code == 0 else "")


@pytest.mark.parametrize("value", [5, None, True, ["a"], {"a": "b"}, 1.5])
def test_value_not_a_string_40610(api, prof, value):
    """docs/protocol.md §11.4: a Value that is not a string -> 40610."""
    u = fresh(api, prof, Nick="keep")
    assert portrait_set(api, prof, u, [(NICK, value)]).code == 40610
    assert profile_of(api, prof, u)[NICK] == "keep"


def test_failed_set_changes_nothing(api, prof):
    """docs/protocol.md §11.4: a portrait_set that fails (one bad item) writes none of its items."""
    u = fresh(api, prof, Nick="keep", FaceUrl="keep-url")
    assert portrait_set(api, prof, u, [(NICK, "new"), (IMAGE, "x" * 501)]).code == 40601
    assert portrait_set(api, prof, u, [(IMAGE, "new-url"), (NICK, 7)]).code == 40610
    assert portrait_set(api, prof, u, [(NICK, "new"), ("Tag_Profile_IM_Gender", "Gender_Type_Male")]).code == 40009
    assert profile_of(api, prof, u) == {NICK: "keep", IMAGE: "keep-url"}


@pytest.mark.parametrize(
    "tag", ["Tag_Profile_IM_Gender", "Tag_Profile_IM_SelfSignature", "Tag_Profile_Custom_Hobby", "nick"]
)
def test_other_tags_40009(api, prof, tag):
    """docs/protocol.md §11.4: a tag other than Tag_Profile_IM_Nick / Tag_Profile_IM_Image ->
    40009, in portrait_set and in portrait_get's TagList."""
    u = fresh(api, prof)
    assert portrait_set(api, prof, u, [(tag, "v")]).code == 40009
    assert portrait_get(api, prof, [u], [NICK, tag]).code == 40009


# ------------------------------------------------------------------ body errors, ErrorDisplay


@pytest.mark.parametrize(
    "body,code",
    [
        pytest.param(b"{", 40001, id="bad_json"),
        pytest.param(b"", 40001, id="empty_body"),
        pytest.param(b"[]", 40001, id="not_an_object"),
        pytest.param(b'{"TagList": ["Tag_Profile_IM_Nick"]}', 40002, id="no_to_account"),
        pytest.param(b'{"To_Account": ["USER"]}', 40001, id="no_taglist"),
        pytest.param(b'{"To_Account": [], "TagList": ["Tag_Profile_IM_Nick"]}', 40001, id="empty_to_account"),
        pytest.param(b'{"To_Account": ["USER"], "TagList": []}', 40001, id="empty_taglist"),
        pytest.param(b'{"To_Account": "USER", "TagList": ["Tag_Profile_IM_Nick"]}', 40001, id="to_account_not_array"),
        pytest.param(b'{"To_Account": ["USER"], "TagList": "Tag_Profile_IM_Nick"}', 40001, id="taglist_not_array"),
    ],
)
def test_get_body_errors(api, prof, body, code):
    """docs/protocol.md §11.4: a bad body / parameter -> 40001, To_Account missing -> 40002
    (instead of 60003 / 70402), with ErrorDisplay "" as in Tencent's answers."""
    u = fresh(api, prof)
    r = raw(api, prof, "portrait_get", body.replace(b"USER", u.encode()))
    assert r.code == code
    assert r.data.get("ErrorDisplay") == "", r


def test_get_more_than_100_accounts_40001(api, prof):
    """docs/protocol.md §11.4: To_Account holds at most 100 UserIDs; more is a bad parameter."""
    r = portrait_get(api, prof, [f"u{i}" for i in range(101)])
    assert r.code == 40001


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="bad_json"),
        pytest.param(b"[]", id="not_an_object"),
        pytest.param(b"{}", id="empty_object"),
        pytest.param(b'{"ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "x"}]}', id="no_from_account"),
        pytest.param(b'{"From_Account": "USER"}', id="no_profile_item"),
        pytest.param(b'{"From_Account": "USER", "ProfileItem": []}', id="empty_profile_item"),
        pytest.param(b'{"From_Account": "USER", "ProfileItem": ["x"]}', id="item_not_object"),
        pytest.param(b'{"From_Account": "USER", "ProfileItem": {"Tag": "Tag_Profile_IM_Nick"}}', id="not_array"),
        pytest.param(
            b'{"From_Account": true, "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "x"}]}', id="from_bool"
        ),
    ],
)
def test_set_body_errors_40001(api, prof, body):
    """docs/protocol.md §11.4: a bad portrait_set body -> 40001 (instead of 60003 / 70402), with
    ErrorDisplay ""; nothing is written."""
    u = fresh(api, prof, Nick="keep")
    r = raw(api, prof, "portrait_set", body.replace(b"USER", u.encode()))
    assert r.code == 40001
    assert r.data.get("ErrorDisplay") == "", r
    assert profile_of(api, prof, u)[NICK] == "keep"


# ------------------------------------------------------------------ framework first


def test_non_admin_70403(api, prof):
    """docs/protocol.md §11.4 with §4: the caller must be an admin (70403), for both commands,
    even for the user's own profile."""
    u = fresh(api, prof, Nick="mine")
    kw = {"identifier": u, "usersig": prof.sig(u)}
    assert portrait_get(api, prof, [u], **kw).code == 70403
    assert portrait_set(api, prof, u, [(NICK, "hacked")], **kw).code == 70403
    assert profile_of(api, prof, u)[NICK] == "mine"


def test_framework_checks_come_before_body_rules(api, prof):
    """docs/protocol.md §11.4 with §4: the REST framework answers first (bad UserSig, missing
    contenttype, unknown command), then the command's body rules."""
    wrong_key = build_sig("0" * 64, ADMIN, prof.sdkappid)
    assert api.post("portrait_get", b"{", prof, service=PROFILE, usersig=wrong_key).code == 70009
    assert api.post("portrait_set", b"{", prof, service=PROFILE, contenttype="xml").code == 60002
    assert api.post("portrait_del", {"From_Account": ADMIN}, prof, service=PROFILE).code == 60009
    assert api.post("portrait_get", {"To_Account": [ADMIN], "TagList": [NICK]}, prof).code == 60009  # wrong service
