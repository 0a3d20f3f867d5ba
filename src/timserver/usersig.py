"""UserSig, Tencent's TLSSigAPIv2 (HMAC-SHA256): sign, decode, verify, explain.

Pure functions, no I/O, no clock of their own (callers pass ``now``). The format (docs/protocol.md §5):

    usersig = b64variant(zlib(json({"TLS.ver": "2.0", "TLS.identifier": ..., "TLS.sdkappid": ...,
                                    "TLS.expire": ..., "TLS.time": ..., "TLS.sig": ...})))
    TLS.sig = base64(HMAC_SHA256(key_as_utf8, "TLS.identifier:{id}\\nTLS.sdkappid:{n}\\n"
                                              "TLS.time:{t}\\nTLS.expire:{e}\\n"[+ "TLS.userbuf:..\\n"]))

where b64variant is standard base64 with ``+ / =`` replaced by ``* - _``. Verification parses the
JSON, so any key order, spacing and zlib level is accepted; the checks run in the order of spec
§9.1 step 6 and each refusal carries the ErrorCode the server answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass

DEFAULT_EXPIRE = 180 * 86400  # the official libraries' default validity: 180 days
MAX_USERSIG_CHARS = 8192  # far above any real sig (~200 chars); bounds the work per request
MAX_INFLATED_BYTES = 16384  # zip-bomb guard: a real document inflates to ~250 bytes

_TO_VARIANT = str.maketrans("+/=", "*-_")
_FROM_VARIANT = str.maketrans("*-_", "+/=")


class SigError(Exception):
    """A UserSig refused, with the ErrorCode the server answers and a reason for people."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True, slots=True)
class SigDocument:
    """What a UserSig holds once decoded (it says nothing yet about validity)."""

    identifier: str
    sdkappid: int
    time: int
    expire: int
    sig: str
    ver: str | None = None
    userbuf: str | None = None  # standard base64, TRTC only; IM sigs have none

    @property
    def expires_at(self) -> int:
        return self.time + self.expire


def _content(identifier: str, sdkappid: int, time: int, expire: int, userbuf: str | None) -> bytes:
    text = (
        f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{time}\nTLS.expire:{expire}\n"
    )
    if userbuf is not None:
        text += f"TLS.userbuf:{userbuf}\n"
    return text.encode("utf-8")


def compute_sig(key: str, identifier: str, sdkappid: int, time: int, expire: int,
                userbuf: str | None = None) -> str:
    """The ``TLS.sig`` field: base64 of the HMAC-SHA256, keyed by the key's UTF-8 bytes."""
    mac = hmac.new(key.encode("utf-8"), _content(identifier, sdkappid, time, expire, userbuf),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def generate(sdkappid: int, key: str, identifier: str, expire: int = DEFAULT_EXPIRE, *,
             now: int, userbuf: bytes | None = None) -> str:
    """Sign a UserSig exactly as the official Python library does (same JSON, same zlib)."""
    doc: dict[str, object] = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": int(sdkappid),
        "TLS.expire": int(expire),
        "TLS.time": int(now),
    }
    userbuf_b64 = base64.b64encode(userbuf).decode("ascii") if userbuf is not None else None
    if userbuf_b64 is not None:
        doc["TLS.userbuf"] = userbuf_b64
    doc["TLS.sig"] = compute_sig(key, identifier, sdkappid, int(now), int(expire), userbuf_b64)
    packed = zlib.compress(json.dumps(doc).encode("utf-8"))
    return base64.b64encode(packed).decode("ascii").translate(_TO_VARIANT)


def _invalid(reason: str) -> SigError:
    return SigError(70003, f"The UserSig cannot be parsed: {reason}.")


def _field(doc: dict, name: str, kind: type) -> object:
    value = doc.get(name)
    # bool is a subclass of int in Python, but true/false are not JSON integers.
    if value is None or type(value) is not kind:
        what = "missing" if name not in doc else ("null" if value is None else "of the wrong type")
        raise _invalid(f"field {name} is {what} (expected {'an integer' if kind is int else 'a string'})")
    return value


def decode(usersig: str) -> SigDocument:
    """Unpack a UserSig into its document; any defect is a :class:`SigError` 70003."""
    if usersig == "":
        raise SigError(70002, "The UserSig is empty.")
    if len(usersig) > MAX_USERSIG_CHARS:
        raise _invalid(f"it is {len(usersig)} characters long, far more than any real UserSig")
    try:
        packed = base64.b64decode(usersig.translate(_FROM_VARIANT).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _invalid("it is not valid base64 in the UserSig alphabet (A-Z a-z 0-9 * - _)") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, MAX_INFLATED_BYTES)
    except zlib.error:
        raise _invalid("its bytes are not a zlib stream") from None
    if not inflater.eof:
        reason = ("it inflates to too many bytes" if inflater.unconsumed_tail
                  else "its zlib stream is truncated")
        raise _invalid(reason)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("its content is not a UTF-8 JSON document") from None
    if not isinstance(doc, dict):
        raise _invalid("its content is JSON but not an object")
    if "TLS.ver" in doc and doc["TLS.ver"] != "2.0":
        raise _invalid(f"TLS.ver is {json.dumps(doc['TLS.ver'])}, only \"2.0\" is supported")
    identifier = _field(doc, "TLS.identifier", str)
    try:
        identifier.encode("utf-8")  # a lone surrogate escape (\\ud800) cannot be signed
    except UnicodeEncodeError:
        raise _invalid("TLS.identifier is not valid Unicode") from None
    userbuf = doc.get("TLS.userbuf")
    if userbuf is not None and type(userbuf) is not str:
        raise _invalid("field TLS.userbuf is of the wrong type (expected a string)")
    return SigDocument(
        identifier=identifier,  # type: ignore[arg-type]
        sdkappid=_field(doc, "TLS.sdkappid", int),  # type: ignore[arg-type]
        time=_field(doc, "TLS.time", int),  # type: ignore[arg-type]
        expire=_field(doc, "TLS.expire", int),  # type: ignore[arg-type]
        sig=_field(doc, "TLS.sig", str),  # type: ignore[arg-type]
        ver=doc.get("TLS.ver"),
        userbuf=userbuf,
    )


def verify(usersig: str, *, sdkappid: int, identifier: str, key: str, now: int,
           kicked_at: int | None = None) -> SigDocument:
    """Check a UserSig for a request; return its document or raise :class:`SigError`.

    The order is docs/protocol.md §5.5: parse (70003), SDKAppID (70014), identifier (70013),
    HMAC (70009), expiry (70001, still valid at exactly time + expire), kick (70005: signed at or
    before the second of the last kick of this identifier).
    """
    doc = decode(usersig)
    if doc.sdkappid != sdkappid:
        raise SigError(70014, f"The UserSig was issued for SDKAppID {doc.sdkappid}, "
                              f"but the request is for SDKAppID {sdkappid}.")
    if doc.identifier != identifier:
        raise SigError(70013, f"The UserSig was issued for identifier {doc.identifier!r}, "
                              f"but the request's identifier is {identifier!r}.")
    expected = compute_sig(key, doc.identifier, doc.sdkappid, doc.time, doc.expire, doc.userbuf)
    # Constant-time comparison: the time taken reveals nothing about how much of TLS.sig matched.
    if not hmac.compare_digest(expected.encode("ascii"), doc.sig.encode("utf-8", "replace")):
        raise SigError(70009, "The UserSig's signature does not match: it was signed with "
                              "another secret key (or altered after signing).")
    if now > doc.expires_at:
        raise SigError(70001, f"The UserSig expired {now - doc.expires_at} s ago "
                              f"(issued at {doc.time}, valid for {doc.expire} s).")
    check_not_kicked(doc, kicked_at)
    return doc


def check_not_kicked(doc: SigDocument, kicked_at: int | None) -> None:
    """70005 when the sig was signed at or before the identifier's latest kick (docs/protocol.md §5.6)."""
    if kicked_at is not None and doc.time <= kicked_at:
        raise SigError(70005, f"The UserSig was issued at {doc.time}, at or before this "
                              f"identifier was kicked at {kicked_at}: sign a new one.")


@dataclass(frozen=True)
class Explanation:
    """What ``explain`` found: the document (None when it does not decode), the refusal (None
    when valid for what was checked) and, in words, what was checked."""

    document: SigDocument | None
    error: SigError | None
    checked: str

    @property
    def valid(self) -> bool:
        return self.error is None


def explain(usersig: str, *, now: int, key: str | None = None, sdkappid: int | None = None,
            identifier: str | None = None, kicked_at: int | None = None) -> Explanation:
    """Why a UserSig is valid or not, as far as can be told with what is given: the SDKAppID and
    identifier it must be for, the key to check its signature (without one: its expiry only),
    the identifier's last kick. Shared by ``timserver usersig explain`` and the console."""
    try:
        doc = decode(usersig)
    except SigError as err:
        return Explanation(None, err, "format")
    checked = "format, SDKAppID, identifier, signature, expiry" + (
        ", kick" if kicked_at is not None else "") if key is not None else (
        "format, expiry only (no key: the signature was not checked)")
    try:
        if sdkappid is not None and doc.sdkappid != sdkappid:
            raise SigError(70014, f"It was issued for SDKAppID {doc.sdkappid}, not {sdkappid}.")
        if identifier and doc.identifier != identifier:
            raise SigError(70013, f"It was issued for identifier {doc.identifier!r}, not "
                                  f"{identifier!r}.")
        if key is not None:
            verify(usersig, sdkappid=doc.sdkappid, identifier=doc.identifier, key=key, now=now,
                   kicked_at=kicked_at)
        elif now > doc.expires_at:
            raise SigError(70001, f"It expired {now - doc.expires_at} s ago.")
    except SigError as err:
        return Explanation(doc, err, checked)
    return Explanation(doc, None, checked)
