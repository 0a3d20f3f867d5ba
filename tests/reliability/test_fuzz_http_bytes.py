"""A raw-bytes fuzzer for the HTTP layer: mutated requests on raw sockets, on each backend.

Seeds are well-formed requests to every kind of endpoint (the five /v4 commands with a valid
admin signature, GET with a body, chunked bodies, pipelined pairs, Expect: 100-continue,
HTTP/1.0, the console, the /_timserver/ admin and emulator endpoints, /openapi.json, /healthz,
/metrics). Each case applies one to four random mutations (bit flips, interesting bytes and
tokens, deleted, duplicated or spliced slices, truncation, odd Content-Length or
Transfer-Encoding, huge or many headers) and sends the result on a fresh connection.

Whatever comes back must be well-formed HTTP and one of: Tencent's envelope (HTTP 200, catalogue
code, never 70500), a documented non-envelope answer (/openapi.json, /healthz, /readyz,
/metrics, the console's files, the journal's NDJSON, a 307 to /console/), or a documented
HTTP-level refusal (400 malformed request, 408 headers too slow, 431 headers too large). Never a
500. Silence is allowed only for a request that is not complete. At the end the server's log
holds no traceback and it still serves.

Size: TIMSERVER_FUZZ_EXAMPLES cases per backend; seeded, so a failure names its case number.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from pathlib import Path

import pytest
from reliability_support import (
    FUZZ_EXAMPLES,
    Server,
    admin_query,
    assert_alive_and_serving,
    check_envelope,
    create_apps,
    log_defects,
    record,
    sign,
    v4_query,
)

pytestmark = pytest.mark.slow

ADMIN = "rel_admin_q7"
CONCURRENCY = 48
IDLE = 0.3  # seconds of silence after which a case is over (an incomplete request waits)
SEED = 20261125

TOKENS = [b"\r\n", b"\n", b"\r\n\r\n", b":", b" ", b"\t", b"%", b"%zz", b"%00", b"%ff", b"?", b"&",
          b"=", b"/", b"//", b"/../", b"\x00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\"", b"\\",
          b"{", b"}", b"[", b"]", b"{}", b"null", b"1e999", b"-0", b"\"\\ud800\"",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: 0\r\n",
          b"Content-Length: 99999999999\r\n", b"Content-Length: -1\r\n", b"Content-Length: 1x\r\n",
          b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Connection: keep-alive\r\n",
          b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"Host: localhost\r\n",
          b"X-Forwarded-For: 10.0.0.1\r\n", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1", b"GET", b"POST",
          b"OPTIONS", b"CONNECT", b"*", b"0\r\n\r\n", b"ffffffff\r\n", b"\xf0\x9f\x98\x80",
          b"\xe2\x80\xae", b"\xef\xbb\xbf", b"sdkappid=", b"usersig=", b"random=4294967296",
          b"contenttype=JSON"]


def _request(method: str, target: str, body: bytes | None = None, headers: list[str] = (),
             version: str = "HTTP/1.1", chunked: bool = False) -> bytes:
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1", *headers]
    payload = b""
    if body is not None:
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            payload = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                               for part in (body[:half], body[half:]) if part) + b"0\r\n\r\n"
        else:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def seeds(app) -> list[bytes]:
    q, aq = v4_query(app), admin_query(app)
    v4 = "/v4/im_open_login_svc/"
    bodies = {
        "account_import": {"UserID": "fz_one", "Nick": "Ann", "FaceUrl": "http://x/a.png"},
        "multiaccount_import": {"AccountList": [{"UserID": "fz_a", "Nick": "A"}, {"UserID": "fz_b"}]},
        "account_delete": {"DeleteItem": [{"UserID": "fz_a"}, {"UserID": "fz_none"}]},
        "account_check": {"CheckItem": [{"UserID": "fz_a"}, {"UserID": ADMIN}]},
        "kick": {"UserID": "fz_one"},
    }
    out = [_request("POST", f"{v4}{cmd}?{q}", json.dumps(body).encode())
           for cmd, body in bodies.items()]
    out += [
        _request("POST", f"{v4}multiaccount_import?{q}", b'{"Accounts":["fz_c","fz_d"]}'),
        _request("GET", f"{v4}account_check?{q}", b'{"CheckItem":[{"UserID":"fz_c"}]}'),
        _request("POST", f"{v4}account_check?{q}", b'{"CheckItem":[{"UserID":"fz_d"}]}',
                 chunked=True),
        _request("POST", f"{v4}account_import?{q}", b'{"UserID":"fz_e"}',
                 headers=["Expect: 100-continue"]),
        _request("POST", f"{v4}account_check?{q}", b'{"CheckItem":[{"UserID":"fz_e"}]}',
                 version="HTTP/1.0"),
        _request("POST", f"{v4}account_check?{q}", b'{"CheckItem":[{"UserID":"fz_e"}]}')
        + _request("GET", "/healthz"),
        _request("OPTIONS", f"{v4}account_check",
                 headers=["Origin: http://example.test", "Access-Control-Request-Method: POST",
                          "Access-Control-Request-Headers: content-type"]),
        _request("GET", "/openapi.json"), _request("GET", "/healthz"), _request("HEAD", "/healthz"),
        _request("GET", "/readyz"), _request("GET", "/metrics"), _request("GET", "/"),
        _request("GET", "/console/"), _request("GET", "/console/static/console.js"),
        _request("GET", "/_timserver/console/meta"),
        _request("POST", "/_timserver/console/usersig/explain", json.dumps(
            {"UserSig": sign(app)}).encode()),
        _request("GET", f"/_timserver/accounts?{aq}&limit=5&prefix=fz"),
        _request("POST", f"/_timserver/accounts/import?{aq}", b'{"Accounts":["fz_f"]}'),
        _request("POST", f"/_timserver/accounts/delete?{aq}", b'{"DeleteItem":[{"UserID":"fz_f"}]}'),
        _request("POST", f"/_timserver/accounts/kick?{aq}", b'{"UserID":"fz_none"}'),
        _request("GET", f"/_timserver/journal?{aq}&limit=3"),
        _request("GET", f"/_timserver/faults?{aq}"), _request("GET", f"/_timserver/clock?{aq}"),
        # the emulator's writes, with a wrong signature: refused before they could act
        _request("POST", f"/_timserver/faults?{admin_query(app, sig='eJyrVgrxCdYrSy1SslJQ')}",
                 b'{"Code":70500}'),
        _request("POST", f"/_timserver/reset?{aq}", b"{}"),
        _request("POST", f"/v4/openim/sendmsg?{q}", b"{}"),
        _request("PUT", f"{v4}account_check?{q}", b"{}"),
    ]
    return out


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(11)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # an interesting byte
            buf[rng.randrange(len(buf))] = rng.choice(b"\x00\xff\r\n :%\"{\\\x80\xc0")
        elif op == 2:  # an interesting token
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 3 and buf:  # delete a slice
            buf[pos:pos + rng.randint(1, 64)] = b""
        elif op == 4 and buf:  # duplicate a slice
            buf[pos:pos] = buf[pos:pos + rng.randint(1, 256)]
        elif op == 5:  # truncate
            del buf[pos:]
        elif op == 6:  # splice with another seed
            other = rng.choice(pool)
            buf[pos:] = other[rng.randrange(len(other) + 1):]
        elif op == 7:  # a header line at a line start
            at = buf.find(b"\r\n")
            if at >= 0:
                buf[at + 2:at + 2] = rng.choice(TOKENS[31:45])
        elif op == 8:  # one huge header
            at = buf.find(b"\r\n")
            if at >= 0:
                size = rng.choice([1024, 8192, 70000, 200000])
                buf[at + 2:at + 2] = b"X-Big: " + b"a" * size + b"\r\n"
        elif op == 9:  # many headers
            at = buf.find(b"\r\n")
            if at >= 0:
                buf[at + 2:at + 2] = b"".join(b"X-H%d: v\r\n" % i for i in range(rng.randint(100, 3000)))
        else:  # random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 32))
    return bytes(buf)


STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*")
OTHER_200 = ("application/x-ndjson", "text/html", "text/css", "text/javascript",
             "application/javascript", "image/svg+xml", "text/plain")


def check_stream(data: bytes, counts: dict[int, int]) -> None:
    """Every response in ``data`` is well-formed and allowed (see the module docstring)."""
    while data:
        match = STATUS.match(data)
        assert match, f"not an HTTP response: {data[:200]!r}"
        end = data.find(b"\r\n\r\n")
        assert end >= 0, f"a response head that never ended: {data[:300]!r}"
        status = int(match.group(1))
        headers = {}
        for line in data[match.end() + 2:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        rest = data[end + 4:]
        if status == 100:
            data = rest
            continue
        counts[status] = counts.get(status, 0) + 1
        if "content-length" in headers:
            size = int(headers["content-length"])
            if rest.startswith(b"HTTP/1.1 ") or len(rest) < size:  # a HEAD answer, or cut by us
                body, data = None, rest if rest.startswith(b"HTTP/1.1 ") else b""
            else:
                body, data = rest[:size], rest[size:]
        else:  # chunked
            body, data = _unchunk(rest)
        kind = headers.get("content-type", "")
        assert status in (200, 307, 400, 408, 431), f"HTTP {status}: {rest[:300]!r}"
        if status == 307:
            assert headers.get("location") == "/console/"
        elif status != 200:
            assert kind.startswith("text/plain"), f"HTTP {status} with {kind!r}"
        elif body is not None and kind.startswith("application/json"):
            value = json.loads(body)
            if isinstance(value, dict) and "ActionStatus" in value:
                check_envelope(status, kind, body)
            else:
                assert isinstance(value, dict) and ("openapi" in value or "status" in value), \
                    f"unexpected JSON: {body[:200]!r}"
        elif body:  # (an OPTIONS pre-flight is answered 200 with no body)
            assert kind.startswith(OTHER_200), f"unexpected Content-Type {kind!r}"


def _unchunk(data: bytes) -> tuple[bytes | None, bytes]:
    body = b""
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return None, b""
        size = int(data[:line_end].split(b";")[0], 16)
        data = data[line_end + 2:]
        if size == 0:
            return body, data[2:]
        body += data[:size]
        data = data[size + 2:]


async def run_case(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        try:
            writer.write(payload)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # refused early (431, 400): read what was answered
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), IDLE)
            except TimeoutError:
                break  # silence: an incomplete request waits for its end
            except (ConnectionError, OSError):
                break
            if not chunk:
                break
            received += chunk
    finally:
        writer.transport.abort()
    return received


def test_mutated_raw_requests(backend_db: str, tmp_path: Path) -> None:
    (app,) = create_apps(backend_db, [{"sdkappid": 1400007002, "admins": [ADMIN]}])
    server = Server(backend_db, tmp_path)
    try:
        pool = seeds(app)
        rng = random.Random(SEED)
        cases = [(n, mutate(rng, rng.choice(pool), pool)) for n in range(FUZZ_EXAMPLES)]
        counts: dict[int, int] = {}
        failures: list[str] = []
        time_limit = 60 + FUZZ_EXAMPLES * 0.05

        async def main() -> int:
            started = time.monotonic()
            gate = asyncio.Semaphore(CONCURRENCY)
            done = 0

            async def one(n: int, payload: bytes) -> None:
                nonlocal done
                async with gate:
                    if time.monotonic() - started > time_limit:
                        return
                    received = await run_case(server.port, payload)
                    done += 1
                    try:
                        check_stream(received, counts)
                    except (AssertionError, ValueError) as exc:
                        failures.append(f"case {n}: {exc}\n  sent {payload[:400]!r}")
            await asyncio.gather(*(one(n, p) for n, p in cases))
            return done

        done = asyncio.run(main())
        assert failures == [], "\n".join(failures[:10])
        assert done == FUZZ_EXAMPLES, f"only {done} cases ran within {time_limit:.0f} s"
        assert counts.get(200, 0) > FUZZ_EXAMPLES // 20, counts  # mutations still reach the app
        assert_alive_and_serving(server, app)
        assert log_defects(server.log()) == []
        record(f"raw-http[{backend_db.split(':')[0]}]", requests=done,
               answers=dict(sorted(counts.items())))
    finally:
        server.stop()
