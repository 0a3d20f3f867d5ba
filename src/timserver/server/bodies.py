"""Request bodies: read with a size limit and a time limit, decode as Tencent's JSON rules say.

Used by the /v4 calls (docs/protocol.md §4 step 9) and by the extension endpoints under /_timserver/,
so that every body anywhere gets the same answers: 60008 too large or too slow, 60003 not a
UTF-8 JSON text, 70402 not a JSON object (where an object is required).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request

from ..protocol.errors import TimError

_decoder = msgspec.json.Decoder()


class BodyTooLarge(TimError):
    def __init__(self, limit: int) -> None:
        super().__init__(60008, f"Malformed HTTP request: the body is larger than {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (60008) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # no one is left to answer: an ordinary refusal, not an internal error
        raise TimError(60008, "Malformed HTTP request: the connection closed before the whole "
                              "body arrived.") from None
    return b"".join(chunks)


async def read_asgi_body(receive: Any, declared: str | None, limit: int) -> bytes:
    """``read_body`` straight from an ASGI ``receive`` (the /v4 front has no ``Request``);
    ``declared`` is the Content-Length header, if any."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # all of it at once: the usual small call
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return body
    chunks, size = [], 0
    while True:
        if message["type"] != "http.request":  # http.disconnect
            raise TimError(60008, "Malformed HTTP request: the connection closed before the "
                                  "whole body arrived.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def decode_json(body: bytes) -> Any:
    """A JSON value, or 60003 for an empty body, invalid UTF-8, invalid or too deep JSON."""
    if not body:
        raise TimError(60003, "The request body is empty: send a JSON object (at least {}).")
    if not body.isascii():  # msgspec lets invalid UTF-8 inside strings through
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TimError(60003, f"The request body is not valid UTF-8 (byte {err.start}); "
                                  "send a UTF-8 JSON object.") from None
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as err:
        raise TimError(60003, f"The request body is not valid JSON ({err}); send a UTF-8 "
                              "JSON object.") from None
    except RecursionError:
        raise TimError(60003, "The request body is nested too deeply to parse.") from None


async def read_json_object(request: Request, limit: int, timeout: float,
                           keep: Callable[[bytes], None] | None = None) -> dict[str, Any]:
    """For extension endpoints: a JSON object body, with the same codes as /v4 calls.
    ``keep`` gets the bytes read (the journal records them with --record-bodies)."""
    try:
        async with asyncio.timeout(timeout):
            body = await read_body(request, limit)
    except TimeoutError:
        raise TimError(60008, f"Service timeout: the request body did not arrive in "
                              f"{timeout:g} s.") from None
    if keep is not None:
        keep(body)
    value = decode_json(body)
    if not isinstance(value, dict):
        raise TimError(70402, "Invalid parameters: the body must be a JSON object.")
    return value
