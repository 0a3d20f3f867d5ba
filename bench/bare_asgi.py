"""The bare-ASGI ceiling: a plain ASGI callable on uvicorn answering a fixed JSON body.

It reads the request body and answers what ``account_check`` with one UserID answers, with the
same headers, on the same HTTP protocol class as ``timserver serve``: nothing of timserver runs.
``bench/pipeline.py`` measures every timserver scenario against it, in the same run.

    .venv/bin/python bench/bare_asgi.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = (b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0,"ResultItem":[{"UserID":"u00000001",'
        b'"ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"}]}')
HEADERS = [(b"access-control-allow-origin", b"*"),
           (b"access-control-allow-headers", b"X-Requested-With"),
           (b"access-control-allow-methods", b"POST"),
           (b"content-type", b"application/json; charset=utf-8"),
           (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the body, as any real endpoint must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, server_header=False, lifespan="on",
                http="timserver.server.httpguard:GuardedHttpToolsProtocol")
