"""UserSig edges a client sees: the exact size bounds, and the reason of every refusal, word for
word, as it reaches ErrorInfo (found by mutation testing, docs/testing.md)."""

from __future__ import annotations

import base64
import json
import time
import zlib

import pytest
from support import query

from timserver import usersig

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
SDKAPPID = 1400000000
T = 1_700_000_000


def b64v(raw: bytes) -> str:
    return base64.b64encode(raw).decode().translate(str.maketrans("+/=", "*-_"))


def document(identifier: str = "xiaojun", t: int = T, expire: int = 86400,
             userbuf: str | None = None, **extra: object) -> dict:
    doc = {"TLS.ver": "2.0", "TLS.identifier": identifier, "TLS.sdkappid": SDKAPPID,
           "TLS.expire": expire, "TLS.time": t,
           "TLS.sig": usersig.compute_sig(KEY, identifier, SDKAPPID, t, expire, userbuf)}
    if userbuf is not None:
        doc["TLS.userbuf"] = userbuf
    return {**doc, **extra}


def pack(doc: dict | bytes, level: int = 6) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return b64v(zlib.compress(raw, level))


def padded_json(size: int) -> bytes:
    """A signed document whose JSON is exactly ``size`` bytes (an extra field pads it)."""
    raw = json.dumps(document(pad="")).encode()
    raw = json.dumps(document(pad="x" * (size - len(raw)))).encode()
    assert len(raw) == size
    return raw


def sig_of_length(chars: int) -> str:
    """A valid UserSig of exactly ``chars`` characters (stored zlib: its size is exact)."""
    for size in range(chars * 3 // 4 - 40, chars * 3 // 4):
        sig = pack(padded_json(size), level=0)
        if len(sig) == chars:
            return sig
    raise AssertionError(chars)


def verify(sig: str, now: int = T, **kw: object) -> usersig.SigDocument:
    args: dict = {"sdkappid": SDKAPPID, "identifier": "xiaojun", "key": KEY, "now": now}
    return usersig.verify(sig, **{**args, **kw})


def refusal(sig: str, **kw: object) -> tuple[int, str]:
    with pytest.raises(usersig.SigError) as info:
        verify(sig, **kw)
    err = info.value
    assert str(err) == f"{err.code}: {err.reason}"
    return err.code, err.reason


def unparsable(reason: str) -> tuple[int, str]:
    return 70003, f"The UserSig cannot be parsed: {reason}."


BASE64 = "it is not valid base64 in the UserSig alphabet (A-Z a-z 0-9 * - _)"


def test_the_longest_usersig_is_accepted_and_one_more_block_is_not() -> None:
    longest = sig_of_length(usersig.MAX_USERSIG_CHARS)
    assert verify(longest).identifier == "xiaojun"
    too_long = sig_of_length(usersig.MAX_USERSIG_CHARS + 4)  # base64 comes in blocks of 4
    assert refusal(too_long) == unparsable(
        f"it is {len(too_long)} characters long, far more than any real UserSig")
    assert refusal("A" * 8193) == unparsable(
        "it is 8193 characters long, far more than any real UserSig")


def test_a_document_may_inflate_to_16_kib_and_not_one_byte_more() -> None:
    assert verify(pack(padded_json(usersig.MAX_INFLATED_BYTES))).identifier == "xiaojun"
    assert refusal(pack(padded_json(usersig.MAX_INFLATED_BYTES + 1))) == unparsable(
        "it inflates to too many bytes")
    bomb = pack(b'{"TLS.sig":"' + b"A" * 5_000_000 + b'"}', level=9)
    assert refusal(bomb) == unparsable("it inflates to too many bytes")


def test_valid_base64_of_something_else_is_refused() -> None:
    packed = zlib.compress(json.dumps(document()).encode())
    assert refusal(b64v(b"plain bytes, no zlib")) == unparsable("its bytes are not a zlib stream")
    assert refusal(b64v(packed[:-6])) == unparsable("its zlib stream is truncated")
    assert refusal(b64v(packed[:2])) == unparsable("its zlib stream is truncated")


@pytest.mark.parametrize("sig", [
    "not base64 !",
    "abc",  # not a whole block
    "é" + pack(document())[1:],
    pack(document())[:8] + " " + pack(document())[8:],  # a space is not skipped
    pack(document())[:8] + "!" + pack(document())[9:],
])
def test_outside_the_usersig_alphabet_is_refused(sig: str) -> None:
    assert refusal(sig) == unparsable(BASE64)


@pytest.mark.parametrize(("content", "reason"), [
    (b"not json", "its content is not a UTF-8 JSON document"),
    (b"\xff\xfe{}", "its content is not a UTF-8 JSON document"),
    (b"[1,2]", "its content is JSON but not an object"),
    (b'"TLS.ver"', "its content is JSON but not an object"),
    (b'{"TLS.identifier":"\\ud800"}', "TLS.identifier is not valid Unicode"),
])
def test_content_refusals(content: bytes, reason: str) -> None:
    assert refusal(pack(content)) == unparsable(reason)


@pytest.mark.parametrize(("ver", "shown"), [("1.0", '"1.0"'), (2, "2"), (None, "null")])
def test_only_version_2_0(ver: object, shown: str) -> None:
    assert refusal(pack(document(**{"TLS.ver": ver}))) == unparsable(
        f'TLS.ver is {shown}, only "2.0" is supported')


@pytest.mark.parametrize(("field", "value", "what"), [
    ("TLS.identifier", None, "null (expected a string)"),
    ("TLS.identifier", 7, "of the wrong type (expected a string)"),
    ("TLS.sdkappid", None, "null (expected an integer)"),
    ("TLS.sdkappid", str(SDKAPPID), "of the wrong type (expected an integer)"),
    ("TLS.time", True, "of the wrong type (expected an integer)"),
    ("TLS.expire", 1.5, "of the wrong type (expected an integer)"),
    ("TLS.sig", 1, "of the wrong type (expected a string)"),
])
def test_each_field_refusal_names_the_field_and_what_is_wrong(field: str, value: object,
                                                              what: str) -> None:
    assert refusal(pack({**document(), field: value})) == unparsable(f"field {field} is {what}")


@pytest.mark.parametrize(("field", "kind"), [
    ("TLS.identifier", "a string"), ("TLS.sdkappid", "an integer"), ("TLS.time", "an integer"),
    ("TLS.expire", "an integer"), ("TLS.sig", "a string")])
def test_a_missing_field_is_named(field: str, kind: str) -> None:
    doc = document()
    del doc[field]
    assert refusal(pack(doc)) == unparsable(f"field {field} is missing (expected {kind})")


def test_userbuf_must_be_a_string_even_when_the_hmac_matches() -> None:
    """Signed over "TLS.userbuf:5": a number would pass the HMAC if it were not refused first."""
    doc = document(userbuf="5")
    assert verify(pack(doc)).userbuf == "5"
    doc["TLS.userbuf"] = 5
    assert refusal(pack(doc)) == unparsable(
        "field TLS.userbuf is of the wrong type (expected a string)")
    doc["TLS.userbuf"] = None  # null is the same as absent: then the HMAC no longer matches
    assert refusal(pack(doc))[0] == 70009


def test_a_sig_field_that_is_not_valid_unicode_is_a_mismatch_not_a_crash() -> None:
    """A lone surrogate (JSON "\\ud800") in TLS.sig cannot be encoded: it is compared replaced."""
    assert refusal(pack({**document(), "TLS.sig": "\ud800"})) == (
        70009, "The UserSig's signature does not match: it was signed with another secret key "
               "(or altered after signing).")


def test_userbuf_is_signed_and_returned() -> None:
    sig = usersig.generate(SDKAPPID, KEY, "xiaojun", 600, now=T, userbuf=b"\x00room")
    doc = verify(sig)
    assert (doc.userbuf, doc.ver, doc.expire, doc.time, doc.sdkappid) == (
        base64.b64encode(b"\x00room").decode(), "2.0", 600, T, SDKAPPID)
    assert usersig.decode(usersig.generate(SDKAPPID, KEY, "xiaojun", 600, now=T)).userbuf is None


def test_default_validity_is_180_days_like_the_official_libraries() -> None:
    doc = usersig.decode(usersig.generate(SDKAPPID, KEY, "xiaojun", now=T))
    assert (doc.expire, doc.expires_at) == (15_552_000, T + 15_552_000)


def test_refusals_after_parsing_say_why() -> None:
    assert refusal("") == (70002, "The UserSig is empty.")
    assert refusal(pack(document()), sdkappid=1) == (
        70014, f"The UserSig was issued for SDKAppID {SDKAPPID}, but the request is for SDKAppID 1.")
    assert refusal(pack(document()), identifier="bob") == (
        70013, "The UserSig was issued for identifier 'xiaojun', but the request's identifier "
               "is 'bob'.")
    assert refusal(pack(document()), key="another") == (
        70009, "The UserSig's signature does not match: it was signed with another secret key "
               "(or altered after signing).")
    assert refusal(pack(document(expire=100)), now=T + 105) == (
        70001, f"The UserSig expired 5 s ago (issued at {T}, valid for 100 s).")
    assert refusal(pack(document()), kicked_at=T) == (
        70005, f"The UserSig was issued at {T}, at or before this identifier was kicked at {T}: "
               "sign a new one.")
    assert verify(pack(document()), kicked_at=T - 1).time == T


async def test_the_reason_reaches_errorinfo_over_http(client, app) -> None:
    url = "/v4/im_open_login_svc/account_check"
    body = b'{"CheckItem":[{"UserID":"a"}]}'
    for sig, (code, info) in ((b64v(b"plain bytes, no zlib"),
                               unparsable("its bytes are not a zlib stream")),
                              ("A" * 8196, unparsable(
                                  "it is 8196 characters long, far more than any real UserSig")),
                              (pack(b"[1]"), unparsable("its content is JSON but not an object"))):
        resp = await client.post(url, params=query(app, sig=sig), content=body)
        assert resp.json() == {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}
    now = int(time.time())
    expired = usersig.generate(app.sdkappid, app.key, app.admins[0], 10, now=now - 20)
    data = (await client.post(url, params=query(app, sig=expired), content=body)).json()
    assert data["ErrorCode"] == 70001 and data["ErrorInfo"].startswith("The UserSig expired 1")


# --- explain: what `timserver usersig explain` and the console tell about a pasted UserSig ------

FULL = "format, SDKAppID, identifier, signature, expiry"
EXPIRY_ONLY = "format, expiry only (no key: the signature was not checked)"


def told(sig: str, now: int = T, **kw: object) -> tuple[object, ...]:
    """explain's answer as (valid, the document's identifier, error code, reason, what was checked)."""
    found = usersig.explain(sig, now=now, **kw)  # type: ignore[arg-type]
    doc, err = found.document, found.error
    return (found.valid, doc and doc.identifier, err and err.code, err and err.reason, found.checked)


def test_explain_checks_what_it_is_given() -> None:
    sig = pack(document())
    full = {"key": KEY, "sdkappid": SDKAPPID, "identifier": "xiaojun"}
    assert told(sig, **full) == (True, "xiaojun", None, None, FULL)
    assert told(sig, key=KEY) == (True, "xiaojun", None, None, FULL)  # for its own app and user
    assert told(sig, key=KEY, identifier="") == (True, "xiaojun", None, None, FULL)
    assert told(sig, **full, kicked_at=T - 1) == (True, "xiaojun", None, None, FULL + ", kick")
    assert told(sig) == (True, "xiaojun", None, None, EXPIRY_ONLY)
    assert told(sig, now=T + 86400) == (True, "xiaojun", None, None, EXPIRY_ONLY)  # its last second
    assert told(sig, kicked_at=T) == (True, "xiaojun", None, None, EXPIRY_ONLY)  # no key, no kick


def test_explain_says_why_not() -> None:
    sig = pack(document())
    full = {"key": KEY, "sdkappid": SDKAPPID, "identifier": "xiaojun"}
    assert told("%%%", **full) == (
        False, None, 70003, "The UserSig cannot be parsed: it is not valid base64 in the UserSig "
        "alphabet (A-Z a-z 0-9 * - _).", "format")
    assert told(sig, **{**full, "sdkappid": SDKAPPID + 1}) == (
        False, "xiaojun", 70014, "It was issued for SDKAppID 1400000000, not 1400000001.", FULL)
    assert told(sig, sdkappid=SDKAPPID + 1) == (
        False, "xiaojun", 70014, "It was issued for SDKAppID 1400000000, not 1400000001.",
        EXPIRY_ONLY)
    assert told(sig, **{**full, "identifier": "bob"}) == (
        False, "xiaojun", 70013, "It was issued for identifier 'xiaojun', not 'bob'.", FULL)
    assert told(sig, identifier="bob") == (
        False, "xiaojun", 70013, "It was issued for identifier 'xiaojun', not 'bob'.", EXPIRY_ONLY)
    assert told(sig, **{**full, "key": KEY[::-1]}) == (
        False, "xiaojun", 70009, "The UserSig's signature does not match: it was signed with "
        "another secret key (or altered after signing).", FULL)
    assert told(sig, now=T + 86401, **full) == (
        False, "xiaojun", 70001, "The UserSig expired 1 s ago (issued at 1700000000, valid for "
        "86400 s).", FULL)
    assert told(sig, now=T + 86401) == (False, "xiaojun", 70001, "It expired 1 s ago.", EXPIRY_ONLY)
    assert told(sig, **full, kicked_at=T) == (
        False, "xiaojun", 70005, "The UserSig was issued at 1700000000, at or before this "
        "identifier was kicked at 1700000000: sign a new one.", FULL + ", kick")
