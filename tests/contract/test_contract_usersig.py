"""§3 and §9.1 step 6 (UserSig checks, in order), §9.6 required fields, step 7 (admin only)."""

import json
import time

import pytest
from contract_support import (
    ADMIN,
    OMIT,
    b64v_encode,
    build_sig,
    decode_sig,
    hmac_field,
    official_sig,
    pack_sig,
    uid,
)

pytestmark = pytest.mark.slow

BODY = {"CheckItem": [{"UserID": "probe"}]}


def call(api, app, sig, identifier=ADMIN, **kw):
    return api.post("account_check", BODY, app, identifier=identifier, usersig=sig, **kw)


# ---------------------------------------------------------------- self-check of the helper


def test_helper_matches_spec_test_vector():
    """§3.9 test vector (checks this suite's own signer, not the server)."""
    key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
    assert hmac_field(key, "xiaojun", 1400000000, 1600000000, 86400) == "F7rhX8gUOlwhSaoxU1nT9fNB9LShQdL1ReCJfHY1Ffo="
    doc = decode_sig(official_sig(1400000000, key, "xiaojun", 86400))
    assert doc["TLS.ver"] == "2.0" and doc["TLS.identifier"] == "xiaojun"
    assert doc["TLS.sig"] == hmac_field(key, "xiaojun", 1400000000, doc["TLS.time"], 86400)


# ---------------------------------------------------------------- accepted encodings


def test_official_library_sig_accepted(api, dev):
    assert call(api, dev, official_sig(dev.sdkappid, dev.key, ADMIN)).code == 0


def test_second_admin_accepted(api, dev):
    assert call(api, dev, dev.sig("admin2"), identifier="admin2").code == 0


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["escaped", "raw_utf8"])
def test_non_ascii_admin_identifier(api, dev, ensure_ascii):
    """A non-ASCII admin (percent-encoded UTF-8 in the query); JSON may escape it or not."""
    sig = build_sig(dev.key, "管理员", dev.sdkappid, ensure_ascii=ensure_ascii)
    assert call(api, dev, sig, identifier="管理员").code == 0


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param(dict(ver=OMIT), id="ver_absent"),
        pytest.param(
            dict(
                order=["TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"], compact=True
            ),
            id="node_order_compact",
        ),
        pytest.param(
            dict(order=["TLS.sig", "TLS.expire", "TLS.time", "TLS.sdkappid", "TLS.identifier", "TLS.ver"]),
            id="reversed_order",
        ),
        pytest.param(dict(compact=True, trailing="\n"), id="go_style_trailing_newline"),
        pytest.param(dict(level=0), id="zlib_level0"),
        pytest.param(dict(level=9), id="zlib_level9"),
        pytest.param(dict(level=1, compact=True), id="zlib_level1_compact"),
    ],
)
def test_sig_format_variants_accepted(api, dev, kw):
    """§3.3/§3.4: key order, whitespace and zlib level are irrelevant; TLS.ver may be absent."""
    assert call(api, dev, build_sig(dev.key, ADMIN, dev.sdkappid, **kw)).code == 0


def test_php_style_escaped_slashes_accepted(api, dev):
    """PHP json_encode escapes '/' as '\\/' (inside TLS.sig); verifiers parse JSON."""
    t = int(time.time())
    doc = {
        "TLS.ver": "2.0",
        "TLS.identifier": ADMIN,
        "TLS.sdkappid": dev.sdkappid,
        "TLS.expire": 86400,
        "TLS.time": t,
        "TLS.sig": hmac_field(dev.key, ADMIN, dev.sdkappid, t, 86400),
    }
    text = json.dumps(doc, separators=(",", ":")).replace("/", "\\/")
    assert call(api, dev, pack_sig(text.encode())).code == 0


def test_expiry_boundary_not_yet_expired(api, dev):
    """now <= time + expire is valid."""
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, t=int(time.time()) - 10, expire=60)
    assert call(api, dev, sig).code == 0


# ---------------------------------------------------------------- 70003: cannot be decoded


def _valid(dev):
    return dev.sig()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: "!!!notbase64!!!", id="bad_base64_chars"),
        pytest.param(lambda d: "abc", id="bad_base64_length"),
        pytest.param(lambda d: _valid(d)[: len(_valid(d)) // 2], id="truncated_half"),
        pytest.param(lambda d: _valid(d)[:-8], id="truncated_tail"),
        pytest.param(lambda d: b64v_encode(b"hello world, not zlib"), id="not_zlib"),
        pytest.param(lambda d: pack_sig(b"this is not json"), id="zlib_not_json"),
        pytest.param(lambda d: pack_sig(b"[1, 2, 3]"), id="json_not_object"),
        pytest.param(lambda d: pack_sig(b'"TLS.sig"'), id="json_string"),
        pytest.param(lambda d: pack_sig(b"\xff\xfe{}"), id="not_utf8"),
    ],
)
def test_undecodable_sig_70003(api, dev, make):
    assert call(api, dev, make(dev)).code == 70003


@pytest.mark.parametrize("field", ["TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"])
def test_missing_required_field_70003(api, dev, field):
    assert call(api, dev, build_sig(dev.key, ADMIN, dev.sdkappid, drop=(field,))).code == 70003


@pytest.mark.parametrize("field", ["TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"])
def test_null_required_field_70003(api, dev, field):
    assert call(api, dev, build_sig(dev.key, ADMIN, dev.sdkappid, override={field: None})).code == 70003


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"TLS.sdkappid": "1400000101"}, id="sdkappid_string"),
        pytest.param({"TLS.time": "1700000000"}, id="time_string"),
        pytest.param({"TLS.expire": "86400"}, id="expire_string"),
        pytest.param({"TLS.time": True}, id="time_bool"),
        pytest.param({"TLS.expire": True}, id="expire_bool"),
        pytest.param({"TLS.identifier": 12345}, id="identifier_number"),
        pytest.param({"TLS.sig": 12345}, id="sig_number"),
        pytest.param({"TLS.sig": ["x"]}, id="sig_array"),
        pytest.param({"TLS.ver": "1.0"}, id="ver_1.0"),
        pytest.param({"TLS.ver": ""}, id="ver_empty"),
    ],
)
def test_wrong_type_or_version_70003(api, dev, override):
    assert call(api, dev, build_sig(dev.key, ADMIN, dev.sdkappid, override=override)).code == 70003


def test_sdkappid_mismatch_with_undecodable_sig_is_70003(api, dev):
    """Decoding comes first: a sig lacking TLS.sig and with another sdkappid -> 70003."""
    sig = build_sig(dev.key, ADMIN, 1400999999, drop=("TLS.sig",))
    assert call(api, dev, sig).code == 70003


# ---------------------------------------------------------------- 70014 / 70013 / 70009


def test_sdkappid_mismatch_70014(api, dev, dev2):
    """TLS.sdkappid != sdkappid (sig of app dev2, correctly signed with its own key)."""
    assert call(api, dev, dev2.sig()).code == 70014


def test_sdkappid_mismatch_beats_identifier_mismatch_and_bad_key(api, dev):
    sig = build_sig("0" * 64, "someone_else", 1400999999)
    assert call(api, dev, sig).code == 70014


def test_identifier_mismatch_70013(api, dev):
    assert call(api, dev, dev.sig("admin2")).code == 70013


def test_identifier_match_is_case_sensitive_70013(api, dev):
    assert call(api, dev, dev.sig("Administrator")).code == 70013


def test_identifier_mismatch_beats_bad_key(api, dev):
    sig = build_sig("f" * 64, "admin2", dev.sdkappid)
    assert call(api, dev, sig).code == 70013


def test_wrong_key_70009(api, dev, dev2):
    """Right sdkappid and identifier, but signed with another app's key."""
    sig = build_sig(dev2.key, ADMIN, dev.sdkappid)
    assert call(api, dev, sig).code == 70009


def test_key_is_used_as_raw_text_not_hex_decoded_70009(api, dev):
    """§3.1: the key is used as raw UTF-8 bytes; a sig made with the hex-decoded key is wrong."""
    import base64
    import hashlib
    import hmac as _hmac

    t = int(time.time())
    content = f"TLS.identifier:{ADMIN}\nTLS.sdkappid:{dev.sdkappid}\nTLS.time:{t}\nTLS.expire:86400\n"
    bad = base64.b64encode(_hmac.new(bytes.fromhex(dev.key), content.encode(), hashlib.sha256).digest()).decode()
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, t=t, override={"TLS.sig": bad})
    assert call(api, dev, sig).code == 70009


def test_tampered_sig_field_70009(api, dev):
    good = decode_sig(dev.sig())["TLS.sig"]
    flipped = ("A" if good[0] != "A" else "B") + good[1:]
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, override={"TLS.sig": flipped})
    assert call(api, dev, sig).code == 70009


def test_extending_expire_without_resigning_70009(api, dev):
    """The HMAC covers TLS.expire: an expired sig whose expire was raised afterwards is a
    signature mismatch (70009), checked before expiry (so not 70001, and not accepted)."""
    t = int(time.time()) - 1000
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, t=t, expire=10, override={"TLS.expire": 86400})
    assert call(api, dev, sig).code == 70009


def test_bad_key_beats_expired(api, dev):
    sig = build_sig("e" * 64, ADMIN, dev.sdkappid, t=int(time.time()) - 1000, expire=10)
    assert call(api, dev, sig).code == 70009


# ---------------------------------------------------------------- 70001


@pytest.mark.parametrize("age,expire", [(1000, 10), (100, 0), (3 * 86400, 86400)])
def test_expired_70001(api, dev, age, expire):
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, t=int(time.time()) - age, expire=expire)
    assert call(api, dev, sig).code == 70001


# ---------------------------------------------------------------- ordering against other steps


def test_unknown_app_beats_sig_checks_60006(api, dev):
    sig = build_sig(dev.key, ADMIN, 1400999999)
    assert call(api, dev, sig, sdkappid="1400999999").code == 60006


def test_sig_checks_before_admin_check(api, dev):
    """Step 6 before step 7: non-admin identifier with a garbage sig -> 70003, not 70403."""
    assert call(api, dev, "garbage*sig", identifier=uid("nonadmin")).code == 70003


def test_sig_checks_before_body(api, dev):
    """Step 6 before step 9: an expired sig with an empty body -> 70001, not 60003."""
    sig = build_sig(dev.key, ADMIN, dev.sdkappid, t=int(time.time()) - 1000, expire=10)
    r = api.post("account_check", b"", dev, usersig=sig)
    assert r.code == 70001


# ---------------------------------------------------------------- step 7: admin only


def test_non_admin_70403(api, dev):
    u = uid("plain")
    assert call(api, dev, dev.sig(u), identifier=u).code == 70403


def test_imported_non_admin_70403(api, dev):
    u = uid("plain")
    assert api.import_one(dev, u).code == 0
    assert call(api, dev, dev.sig(u), identifier=u).code == 70403


def test_admin_name_is_case_sensitive_70403(api, dev):
    assert call(api, dev, dev.sig("Administrator"), identifier="Administrator").code == 70403


@pytest.mark.parametrize("command", ["account_import", "multiaccount_import", "account_delete", "kick"])
def test_non_admin_70403_all_commands(api, dev, command):
    u = uid("plain")
    bodies = {
        "account_import": {"UserID": uid()},
        "multiaccount_import": {"Accounts": [uid()]},
        "account_delete": {"DeleteItem": [{"UserID": uid()}]},
        "kick": {"UserID": uid()},
    }
    r = api.post(command, bodies[command], dev, identifier=u, usersig=dev.sig(u))
    assert r.code == 70403


def test_admin_check_before_body(api, dev):
    """Step 7 before step 9: non-admin with invalid JSON -> 70403."""
    u = uid("plain")
    r = api.post("account_check", b"{not json", dev, identifier=u, usersig=dev.sig(u))
    assert r.code == 70403
