"""UserSig: the spec's test vector, the official library, and every refusal code of §9.1."""

from __future__ import annotations

import base64
import json
import time
import zlib

import pytest
import TLSSigAPIv2
from hypothesis import given
from hypothesis import strategies as st

from timserver import usersig

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
SDKAPPID = 1400000000


def pack(doc: dict | str | bytes, level: int = 6) -> str:
    raw = doc if isinstance(doc, bytes) else (
        doc if isinstance(doc, str) else json.dumps(doc)).encode()
    return base64.b64encode(zlib.compress(raw, level)).decode().translate(
        str.maketrans("+/=", "*-_"))


def document(identifier: str = "xiaojun", sdkappid: int = SDKAPPID, t: int | None = None,
             expire: int = 86400, key: str = KEY) -> dict:
    t = int(time.time()) if t is None else t
    return {"TLS.ver": "2.0", "TLS.identifier": identifier, "TLS.sdkappid": sdkappid,
            "TLS.expire": expire, "TLS.time": t,
            "TLS.sig": usersig.compute_sig(key, identifier, sdkappid, t, expire)}


def verify(sig: str, identifier: str = "xiaojun", **kw) -> usersig.SigDocument:
    args = {"sdkappid": SDKAPPID, "identifier": identifier, "key": KEY, "now": int(time.time())}
    args.update(kw)
    return usersig.verify(sig, **args)


def refused(sig: str, **kw) -> int:
    with pytest.raises(usersig.SigError) as info:
        verify(sig, **kw)
    assert info.value.reason  # every refusal says why
    return info.value.code


def test_spec_vector_hmac() -> None:
    assert usersig.compute_sig(KEY, "xiaojun", SDKAPPID, 1600000000, 86400) == \
        "F7rhX8gUOlwhSaoxU1nT9fNB9LShQdL1ReCJfHY1Ffo="


def test_generate_matches_the_official_library_byte_for_byte(monkeypatch) -> None:
    monkeypatch.setattr(TLSSigAPIv2.time, "time", lambda: 1600000000)
    official = TLSSigAPIv2.TLSSigAPIv2(SDKAPPID, KEY).gen_sig("xiaojun", 86400)
    assert usersig.generate(SDKAPPID, KEY, "xiaojun", 86400, now=1600000000) == official
    assert official.startswith("eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSm")


@pytest.mark.parametrize("identifier", ["administrator", "用户", "a b+c/d", "x" * 32])
def test_sig_from_the_official_library_verifies(identifier: str) -> None:
    sig = TLSSigAPIv2.TLSSigAPIv2(SDKAPPID, KEY).gen_sig(identifier, 3600)
    doc = verify(sig, identifier=identifier)
    assert (doc.identifier, doc.sdkappid, doc.expire, doc.ver) == (identifier, SDKAPPID, 3600, "2.0")


def test_sig_with_userbuf_from_the_official_library_verifies() -> None:
    sig = TLSSigAPIv2.TLSSigAPIv2(SDKAPPID, KEY).gen_sig_with_userbuf("u1", 3600, b"\x00\x01room")
    assert verify(sig, identifier="u1").userbuf == base64.b64encode(b"\x00\x01room").decode()


@pytest.mark.parametrize("level", [0, 1, 9])
def test_any_zlib_level(level: int) -> None:
    assert verify(pack(document(), level)).identifier == "xiaojun"


def test_any_key_order_and_spacing() -> None:
    doc = document()
    reordered = dict(reversed(list(doc.items())))
    compact = json.dumps(reordered, separators=(",", ":"))
    assert verify(pack(compact)).identifier == "xiaojun"
    assert verify(pack(json.dumps(doc, indent=4) + "\n")).identifier == "xiaojun"


def test_ver_may_be_absent_but_not_other() -> None:
    doc = document()
    del doc["TLS.ver"]
    assert verify(pack(doc)).ver is None
    assert refused(pack({**document(), "TLS.ver": "1.0"})) == 70003


def test_go_style_sig_without_compression_and_with_trailing_newline() -> None:
    doc = document()
    assert verify(pack(json.dumps(doc, separators=(",", ":")) + "\n", level=0)).time == doc["TLS.time"]


@pytest.mark.parametrize("sig", [
    "not base64 !", "abc", pack(b"not json"), pack(b"[1,2]"), pack(b"\xff\xfe"),
    base64.b64encode(b"plain bytes, no zlib").decode().translate(str.maketrans("+/=", "*-_")),
    pack(document())[:-10],  # truncated
    "A" * 10000,  # absurdly long
])
def test_undecodable_is_70003(sig: str) -> None:
    assert refused(sig) == 70003


@pytest.mark.parametrize("field", ["TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire",
                                   "TLS.sig"])
@pytest.mark.parametrize("value", [None, "missing", True, 1.5, [1], {"a": 1}])
def test_required_fields_missing_null_or_wrong_type_is_70003(field: str, value: object) -> None:
    doc = document()
    if value == "missing":
        del doc[field]
    else:
        doc[field] = value
    assert refused(pack(doc)) == 70003


def test_numbers_as_strings_are_70003() -> None:
    assert refused(pack({**document(), "TLS.sdkappid": str(SDKAPPID)})) == 70003
    assert refused(pack({**document(), "TLS.expire": "86400"})) == 70003


def test_zip_bomb_is_refused_quickly() -> None:
    bomb = pack(b'{"TLS.sig":"' + b"A" * 5_000_000 + b'"}', level=9)
    assert len(bomb) < usersig.MAX_USERSIG_CHARS
    assert refused(bomb) == 70003


def test_check_order_sdkappid_before_identifier_before_hmac_before_expiry() -> None:
    # Everything wrong at once: the sdkappid wins, then the identifier, then the HMAC...
    bad = pack(document(identifier="other", sdkappid=1, t=1, expire=1, key="wrong"))
    assert refused(bad) == 70014
    bad = pack(document(identifier="other", t=1, expire=1, key="wrong"))
    assert refused(bad) == 70013
    bad = pack(document(t=1, expire=1, key="wrong"))
    assert refused(bad) == 70009
    assert refused(pack(document(t=1, expire=1))) == 70001


def test_expiry_boundary_is_inclusive() -> None:
    sig = pack(document(t=1000, expire=100))
    assert verify(sig, now=1100).expires_at == 1100
    assert refused(sig, now=1101) == 70001


def test_tampered_signature_is_70009() -> None:
    doc = document()
    doc["TLS.expire"] = 10**9  # extend the validity without re-signing
    assert refused(pack(doc)) == 70009
    sig = TLSSigAPIv2.TLSSigAPIv2(SDKAPPID, "another-key").gen_sig("xiaojun")
    assert refused(sig) == 70009


def test_kick_refuses_sigs_signed_at_or_before() -> None:
    doc = usersig.decode(pack(document(t=5000)))
    usersig.check_not_kicked(doc, None)
    usersig.check_not_kicked(doc, 4999)
    for kicked_at in (5000, 5001):
        with pytest.raises(usersig.SigError) as info:
            usersig.check_not_kicked(doc, kicked_at)
        assert info.value.code == 70005


def test_empty_is_70002() -> None:
    assert refused("") == 70002


@given(st.text(max_size=300))
def test_decoder_never_fails_otherwise(text: str) -> None:
    try:
        usersig.decode(text)
    except usersig.SigError as err:
        assert err.code in (70002, 70003)


@given(st.binary(max_size=400))
def test_decoder_on_any_zlib_payload(raw: bytes) -> None:
    try:
        usersig.decode(pack(raw))
    except usersig.SigError as err:
        assert err.code == 70003


@given(st.dictionaries(st.sampled_from(["TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.time",
                                        "TLS.expire", "TLS.sig", "TLS.userbuf", "x"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text()))
def test_decoder_on_any_document(doc: dict) -> None:
    try:
        decoded = usersig.decode(pack(doc))
    except usersig.SigError as err:
        assert err.code == 70003
    else:
        assert type(decoded.sdkappid) is int and type(decoded.identifier) is str
