"""The console behind a same-host reverse proxy, and wrong tokens (docs/console.md).

Reproduced on the old code: a proxy on the same host made every visitor look local, so only the
token gate remained, and wrong tokens could be tried without end.
"""

from __future__ import annotations

import httpx
import pytest
from console_support import TOKEN

from timserver.server.access import TOKEN_HEADER, WRONG_TOKENS_ALLOWED

PROXY_HEADERS = [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                 {"X-Forwarded-Host": "im.example.com"}, {"X-Real-IP": "203.0.113.9"}]


@pytest.mark.parametrize("headers", PROXY_HEADERS)
async def test_proxied_requests_find_no_console(console: httpx.AsyncClient,
                                                headers: dict[str, str]) -> None:
    direct = await console.get("/_timserver/console/meta")
    assert direct.json()["ErrorCode"] == 0
    proxied = await console.get("/_timserver/console/meta", headers=headers)
    assert proxied.json()["ErrorCode"] == 60009  # like an unknown path
    page = await console.get("/console/", headers=headers)
    assert page.json()["ErrorCode"] == 60009
    apps = await console.get("/_timserver/console/apps", headers={**headers, TOKEN_HEADER: TOKEN})
    assert apps.json()["ErrorCode"] == 60009


async def test_console_bind_lets_a_proxy_through(make_console) -> None:
    client = await make_console(console_bind="127.0.0.1")
    answer = await client.get("/_timserver/console/meta", headers=PROXY_HEADERS[0])
    assert answer.json()["ErrorCode"] == 0


async def test_wrong_tokens_are_throttled(console: httpx.AsyncClient) -> None:
    right = {TOKEN_HEADER: TOKEN}
    assert (await console.get("/_timserver/console/apps", headers=right)).json()["ErrorCode"] == 0
    for n in range(WRONG_TOKENS_ALLOWED):
        wrong = await console.get("/_timserver/console/apps", headers={TOKEN_HEADER: f"x{n}"})
        assert wrong.json()["ErrorCode"] == 60004
    meta = (await console.get("/_timserver/console/meta", headers=right)).json()
    assert meta["Token"] is False  # meta no longer tells whether a token is right
    refused = (await console.get("/_timserver/console/apps", headers=right)).json()
    assert refused["ErrorCode"] == 60004 and "Too many wrong console tokens" in refused["ErrorInfo"]
