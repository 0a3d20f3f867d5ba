"""§9.1 steps 1-5 and §9.6: method, path, query parameters, and the order of those checks."""

import pytest
from contract_support import ADMIN, OMIT, SVC, uid

pytestmark = pytest.mark.slow

CHECK_BODY = {"CheckItem": [{"UserID": "someone"}]}


# ---------------------------------------------------------------- step 1: method


def test_post_is_served(api, dev):
    r = api.post("account_check", CHECK_BODY, dev)
    assert r.code == 0
    assert r["ResultItem"][0]["UserID"] == "someone"


def test_get_with_json_body_is_served_like_post(api, dev):
    """§9.1.1: a GET that carries the JSON body is served exactly like a POST."""
    u = uid()
    r = api.request("GET", "account_import", {"UserID": u}, dev)
    assert r.code == 0
    r = api.request("GET", "account_check", {"CheckItem": [{"UserID": u}]}, dev)
    assert r.code == 0
    assert r["ResultItem"][0]["AccountStatus"] == "Imported"


def test_get_without_body_is_empty_body_60003(api, dev):
    """§9.6: a GET with no body is an empty body -> 60003."""
    r = api.request("GET", "account_check", None, dev)
    assert r.code == 60003


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_60008(api, dev, method):
    """§9.1.1: any method other than POST/GET -> 60008 (even with a valid request)."""
    r = api.request(method, "account_check", CHECK_BODY, dev)
    assert r.code == 60008


def test_method_checked_before_path(api, dev):
    """Step 1 comes before step 2: PUT to an unknown command is 60008, not 60009."""
    r = api.request("PUT", "no_such_command", CHECK_BODY, dev)
    assert r.code == 60008


def test_options_preflight_gets_cors_headers(api, server):
    """§9.1.1: an OPTIONS pre-flight gets a normal CORS answer."""
    resp = api.client.request(
        "OPTIONS",
        f"{server.base_url}/v4/{SVC}/account_import",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert resp.status_code in (200, 204), resp
    acao = resp.headers.get("access-control-allow-origin")
    assert acao in ("*", "http://localhost:8080"), resp.headers
    methods = resp.headers.get("access-control-allow-methods", "")
    assert "POST" in methods.upper(), resp.headers
    allow_headers = resp.headers.get("access-control-allow-headers", "").lower()
    assert "content-type" in allow_headers or "*" in allow_headers, resp.headers


# ---------------------------------------------------------------- step 2: path


@pytest.mark.parametrize(
    "service,command",
    [
        ("openim", "sendmsg"),  # a Tencent command timserver does not serve
        (SVC, "no_such_command"),
        (SVC, "Account_Import"),  # case-sensitive
        ("IM_OPEN_LOGIN_SVC", "account_import"),
        ("no_such_service", "account_import"),
        ("profile", "portrait_get_v2"),
    ],
)
def test_unknown_service_or_command_60009(api, dev, service, command):
    r = api.post(command, {"To_Account": ["a"]}, dev, service=service)
    assert r.code == 60009


def test_path_checked_before_sdkappid(api):
    """Step 2 before step 3: unknown command without any query -> 60009, not 60012."""
    r = api.post("no_such_command", CHECK_BODY, raw_query="")
    assert r.code == 60009


# ---------------------------------------------------------------- step 3: sdkappid


def test_sdkappid_missing_60012(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid=OMIT)
    assert r.code == 60012


def test_sdkappid_empty_counts_as_missing_60012(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid="")
    assert r.code == 60012


def test_sdkappid_parameter_name_is_case_sensitive(api, dev):
    """§1.1: parameter names are case-sensitive; SDKAppID= is not sdkappid=."""
    r = api.post("account_check", CHECK_BODY, dev, sdkappid=OMIT, extra=[("SDKAppID", str(dev.sdkappid))])
    assert r.code == 60012


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "-1400000101",
        "+1400000101",
        " 1400000101",
        "1400000101 ",
        "0x5373D725",
        "1400000101.0",
        "1e9",
        "１４００",
    ],
)
def test_sdkappid_not_digits_60006(api, dev, value):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid=value)
    assert r.code == 60006


@pytest.mark.parametrize("value", ["1", "1400999999", "0", "99999999999999999999999999"])
def test_sdkappid_unknown_app_60006(api, dev, value):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid=value)
    assert r.code == 60006


def test_sdkappid_leading_zeros_allowed(api, dev):
    """§9.6: leading zeros are allowed (and the UserSig's TLS.sdkappid still matches)."""
    r = api.post("account_check", CHECK_BODY, dev, sdkappid="000" + str(dev.sdkappid))
    assert r.code == 0


def test_unknown_sdkappid_checked_before_identifier(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid="1400999999", identifier=OMIT, usersig=OMIT)
    assert r.code == 60006


def test_unknown_query_parameters_are_ignored(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, extra=[("foo", "bar"), ("ver", "v4")])
    assert r.code == 0


def test_sdkappid_checked_before_identifier(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, sdkappid=OMIT, identifier=OMIT, usersig=OMIT)
    assert r.code == 60012


# ---------------------------------------------------------------- step 4: identifier / usersig


def test_identifier_missing_60004(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, identifier=OMIT, usersig=dev.sig())
    assert r.code == 60004


def test_identifier_empty_60004(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, identifier="", usersig=dev.sig())
    assert r.code == 60004


def test_usersig_missing_60004(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, usersig=OMIT)
    assert r.code == 60004


def test_usersig_empty_70002(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, usersig="")
    assert r.code == 70002


def test_identifier_checked_before_random(api, dev):
    """Step 4 before step 5."""
    r = api.post("account_check", CHECK_BODY, dev, identifier=OMIT, usersig=dev.sig(), random_="x")
    assert r.code == 60004


def test_empty_usersig_checked_before_random(api, dev):
    r = api.post("account_check", CHECK_BODY, dev, usersig="", contenttype=OMIT)
    assert r.code == 70002


# ---------------------------------------------------------------- step 5: random / contenttype


@pytest.mark.parametrize(
    "value",
    [OMIT, "", "abc", "-1", "+1", " 1", "1 ", "0x10", "1.0", "4294967296", "99999999999999999999", "1e3", "１"],
)
def test_random_invalid_60002(api, dev, value):
    r = api.post("account_check", CHECK_BODY, dev, random_=value)
    assert r.code == 60002


@pytest.mark.parametrize("value", ["0", "4294967295", "0000000042", "04294967295", "123456"])
def test_random_valid_values(api, dev, value):
    r = api.post("account_check", CHECK_BODY, dev, random_=value)
    assert r.code == 0


def test_random_is_not_replay_protection(api, dev):
    """§9.1.5: the same random (and even the same usersig) may be used twice."""
    sig = dev.sig()
    r1 = api.post("account_check", CHECK_BODY, dev, random_="7", usersig=sig)
    r2 = api.post("account_check", CHECK_BODY, dev, random_="7", usersig=sig)
    assert (r1.code, r2.code) == (0, 0)


@pytest.mark.parametrize("value", [OMIT, "", "JSON", "Json", "xml", "json ", "application/json", "jsonp"])
def test_contenttype_not_exactly_json_60002(api, dev, value):
    r = api.post("account_check", CHECK_BODY, dev, contenttype=value)
    assert r.code == 60002


def test_query_parameter_order_is_not_significant(api, dev):
    """§1.1: the documented sample sends usersig, identifier, sdkappid, random, contenttype."""
    q = f"usersig={dev.sig()}&identifier={ADMIN}&sdkappid={dev.sdkappid}&random=99&contenttype=json"
    r = api.post("account_check", CHECK_BODY, raw_query=q)
    assert r.code == 0


def test_percent_encoded_query_values_are_decoded(api, dev):
    """Query values are URL-decoded: a usersig with '*' sent as %2A still verifies."""
    sig = dev.sig()
    enc = sig.replace("*", "%2A").replace("-", "%2D").replace("_", "%5F")
    q = f"sdkappid={dev.sdkappid}&identifier=%61dministrator&usersig={enc}&random=1&contenttype=json"
    r = api.post("account_check", CHECK_BODY, raw_query=q)
    assert r.code == 0


def test_random_checked_before_usersig(api, dev):
    """Step 5 before step 6: bad random with a garbage usersig -> 60002."""
    r = api.post("account_check", CHECK_BODY, dev, usersig="garbage", random_="-5")
    assert r.code == 60002
