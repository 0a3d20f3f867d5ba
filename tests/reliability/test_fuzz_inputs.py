"""Hypothesis on the three parsers every request goes through, in-process: the UserSig decoder
and verifier, the body parser (JSON → a command's request struct) and the query parser.

Properties: on any input each one answers with its documented refusal (a SigError with 70002 or
70003; a TimError with 60003, 60015 or 70402) or a well-typed value, never another exception; a
UserSig verifies only if it carries exactly what was signed; valid bodies round-trip their
UserIDs byte for byte. Size: TIMSERVER_FUZZ_EXAMPLES / 5 examples per property.
"""

from __future__ import annotations

import base64
import json
import zlib

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_support import FUZZ_EXAMPLES, record

from timserver import usersig
from timserver.protocol.commands import BY_NAME, COMMANDS
from timserver.protocol.errors import TimError
from timserver.server.bodies import decode_json
from timserver.server.dispatch import parse_query

pytestmark = pytest.mark.slow

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
EXAMPLES = max(100, FUZZ_EXAMPLES // 5)
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    if COUNTS:
        record("hypothesis-parsers", inputs=sum(COUNTS.values()), **COUNTS)


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _variant(data: bytes) -> str:
    return base64.b64encode(data).decode().translate(str.maketrans("+/=", "*-_"))


identifiers = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
sig_docs = st.fixed_dictionaries({}, optional={
    "TLS.ver": st.sampled_from(["2.0", "1.0", 2]) | json_scalars,
    "TLS.identifier": identifiers | json_scalars,
    "TLS.sdkappid": st.integers(0, 2**33) | json_scalars,
    "TLS.time": st.integers(-2**40, 2**40) | json_scalars,
    "TLS.expire": st.integers(-2**40, 2**40) | json_scalars,
    "TLS.sig": st.text(max_size=60) | json_scalars,
    "TLS.userbuf": st.text(max_size=20) | json_scalars,
})


@fuzz
@given(text=st.text(max_size=400) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                            "qrstuvwxyz0123456789*-_", max_size=400))
def test_decoding_any_text_is_a_document_or_70002_70003(text: str) -> None:
    _count("usersig_text")
    try:
        doc = usersig.decode(text)
    except usersig.SigError as err:
        assert err.code in (70002, 70003) and err.reason
        return
    assert type(doc.identifier) is str and type(doc.sdkappid) is int and type(doc.time) is int


@fuzz
@given(doc=sig_docs, level=st.integers(0, 9))
def test_decoding_any_packed_document_is_typed_or_70003(doc: dict, level: int) -> None:
    _count("usersig_document")
    packed = _variant(zlib.compress(json.dumps(doc).encode(), level))
    try:
        decoded = usersig.decode(packed)
    except usersig.SigError as err:
        assert err.code == 70003
        return
    assert decoded.identifier == doc["TLS.identifier"] and decoded.sdkappid == doc["TLS.sdkappid"]
    assert type(decoded.time) is int and type(decoded.expire) is int and type(decoded.sig) is str


@fuzz
@given(identifier=identifiers, sdkappid=st.integers(1, 2**32 - 1),
       now=st.integers(0, 2**34), expire=st.integers(1, 2**31))
def test_a_signed_usersig_verifies_and_round_trips(identifier: str, sdkappid: int, now: int,
                                                    expire: int) -> None:
    _count("usersig_roundtrip")
    sig = usersig.generate(sdkappid, KEY, identifier, expire, now=now)
    doc = usersig.verify(sig, sdkappid=sdkappid, identifier=identifier, key=KEY, now=now)
    assert (doc.identifier, doc.sdkappid, doc.time, doc.expire) == (identifier, sdkappid, now,
                                                                     expire)


@fuzz
@given(identifier=identifiers, position=st.integers(0, 10_000), replacement=st.sampled_from(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_"))
def test_a_tampered_usersig_never_verifies_with_other_content(identifier: str, position: int,
                                                              replacement: str) -> None:
    _count("usersig_tampered")
    now = 1_800_000_000
    sig = usersig.generate(1400000000, KEY, identifier, 86400, now=now)
    i = position % len(sig)
    tampered = sig[:i] + replacement + sig[i + 1:]
    try:
        doc = usersig.verify(tampered, sdkappid=1400000000, identifier=identifier, key=KEY, now=now)
    except usersig.SigError as err:
        assert err.code in (70003, 70009, 70013, 70014)
        return
    # it verified: then it carries exactly what was signed (a change in unused padding bits)
    assert (doc.identifier, doc.sdkappid, doc.time, doc.expire) == (identifier, 1400000000, now,
                                                                     86400)


@fuzz
@given(identifier=identifiers, wrong=st.text(min_size=1, max_size=64))
def test_another_key_is_70009(identifier: str, wrong: str) -> None:
    _count("usersig_foreign_key")
    assume(wrong != KEY)
    sig = usersig.generate(1400000000, wrong, identifier, 86400, now=1_800_000_000)
    try:
        usersig.verify(sig, sdkappid=1400000000, identifier=identifier, key=KEY, now=1_800_000_000)
    except usersig.SigError as err:
        assert err.code == 70009
    else:
        raise AssertionError("a UserSig signed with another key verified")


@fuzz
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
       command=st.sampled_from([c.name for c in COMMANDS]))
def test_any_body_parses_to_its_struct_or_a_documented_code(body: bytes, command: str) -> None:
    _count("body_any")
    cmd = BY_NAME[command]
    try:
        request = cmd.parse(decode_json(body))
    except TimError as err:
        assert err.code in (60003, 60015, 70402) and err.info
        return
    assert isinstance(request, cmd.request)


userids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12) | \
    st.sampled_from(["'; DROP TABLE accounts; --", "a' OR '1'='1", "%", "_", "\\", "NULL",
                     "e\u0301", "\u00e9", "\U0001f600", "\u202e", "\ufeff", "a" * 32, "é" * 16])


@fuzz
@given(ids=st.lists(userids, min_size=1, max_size=100), legacy=st.booleans())
def test_valid_bodies_keep_their_userids_byte_for_byte(ids: list[str], legacy: bool) -> None:
    _count("body_valid")
    raw = msgspec.json.encode({"DeleteItem": [{"UserID": u} for u in ids]})
    assert [i.UserID for i in BY_NAME["account_delete"].parse(decode_json(raw)).DeleteItem] == ids
    body = {"Accounts": ids} if legacy else {"AccountList": [{"UserID": u, "Nick": u} for u in ids]}
    parsed = BY_NAME["multiaccount_import"].parse(decode_json(msgspec.json.encode(body)))
    got = parsed.Accounts if legacy else [i.UserID for i in parsed.AccountList]
    assert got == ids
    single = BY_NAME["account_import"].parse(decode_json(msgspec.json.encode({"Identifier": ids[0]})))
    assert single.UserID == ids[0]


@fuzz
@given(raw=st.binary(max_size=300))
def test_any_query_string_parses(raw: bytes) -> None:
    _count("query")
    params = parse_query(raw)
    assert all(type(k) is str and type(v) is str for k, v in params.items())
