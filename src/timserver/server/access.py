"""Who may reach the web console: the loopback rule, ``--console-bind`` and the console token.

The admin endpoints and /v4 calls are decided by UserSig (``dispatch.Dispatcher.authenticate``);
this module decides the console's two gates (docs/console.md):

* the **place**: a connection made to a loopback address of this machine with a loopback
  ``Host`` header (a DNS-rebinding page has its own name there) and no proxy headers (a
  same-host reverse proxy makes every visitor look local), unless ``--console-bind`` names the
  address it answers on;
* the **token** that ``timserver serve`` prints, for what needs the server's secrets; wrong
  tokens are throttled per peer address.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import time
from collections import deque

from starlette.requests import Request

from ..protocol.errors import TimError

TOKEN_HEADER = "X-Timserver-Console-Token"  # noqa: S105 (a header name)
TOKEN_ENV = "TIMSERVER_CONSOLE_TOKEN"  # noqa: S105 (an environment variable name)
#: Headers a reverse proxy adds: their presence means the peer is not the visitor.
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto",
                 b"x-real-ip")
WRONG_TOKENS_ALLOWED = 10  # per peer address per WRONG_TOKEN_WINDOW seconds
WRONG_TOKEN_WINDOW = 60.0
_PEERS_TRACKED = 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_of(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host_header: str) -> bool:
    host = _host_name(host_header)
    host_ip = ip_of(host)
    return (host == "localhost" or host.endswith(".localhost")
            or (host_ip is not None and host_ip.is_loopback))


class ConsoleAccess:
    """Where the console answers and who holds its token.

    ``bind`` None: only connections made to a loopback address of this machine, with a
    loopback ``Host`` header and no proxy header. ``bind`` an address: connections made to that
    address (``0.0.0.0`` / ``::``: to any address); the operator chose where it answers, proxies
    included. The local address is the socket's own (ASGI ``server``), which no header can forge.
    """

    def __init__(self, enabled: bool = True, bind: str | None = None,
                 token: str | None = None) -> None:
        self.enabled = enabled
        self.bind = ip_of(bind) if bind else None
        if bind and self.bind is None:
            raise ValueError(f"--console-bind needs an IP address, not {bind!r}")
        self.token = token or None
        self._wrong: dict[str, deque[float]] = {}  # peer address → times of wrong tokens

    def allows(self, request: Request) -> bool:
        if not self.enabled:
            return False
        server = request.scope.get("server")
        local = ip_of(server[0]) if server else None
        if local is None:
            return False
        if self.bind is None:
            if not local.is_loopback:
                return False
            if any(name in PROXY_HEADERS for name, _ in request.scope["headers"]):
                return False
            return is_loopback_host(request.headers.get("host", ""))
        return self.bind.is_unspecified or local == self.bind

    def token_ok(self, request: Request) -> bool:
        """Whether the request carries the token; a wrong one counts against its peer."""
        given = request.headers.get(TOKEN_HEADER, "")
        if not self.token or not given:
            return False
        if self._throttled(request):
            return False
        right = hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8"))
        if not right:
            self._count_wrong(request)
        return right

    def require_token(self, request: Request) -> None:
        if self.token is None:
            raise TimError(60004, "This server runs without a console token, so it signs "
                                  "nothing for the console: type the app's key in the page "
                                  "instead (it stays in your browser).")
        if self._throttled(request):
            raise TimError(60004, f"Too many wrong console tokens from this address: wait "
                                  f"{WRONG_TOKEN_WINDOW:g} s, then open the console link that "
                                  "`timserver serve` printed.")
        if not self.token_ok(request):
            raise TimError(60004, "The console token is missing or wrong: open the console "
                                  "link that `timserver serve` printed (it carries the token).")

    def _peer(self, request: Request) -> str:
        client = request.scope.get("client")
        return str(client[0]) if client else "?"

    def _recent(self, peer: str) -> deque[float] | None:
        times = self._wrong.get(peer)
        if times is not None:
            cutoff = time.monotonic() - WRONG_TOKEN_WINDOW
            while times and times[0] < cutoff:
                times.popleft()
        return times

    def _throttled(self, request: Request) -> bool:
        times = self._recent(self._peer(request))
        return times is not None and len(times) >= WRONG_TOKENS_ALLOWED

    def _count_wrong(self, request: Request) -> None:
        peer = self._peer(request)
        if peer not in self._wrong and len(self._wrong) >= _PEERS_TRACKED:
            self._wrong.clear()  # many peers: start over rather than grow
        self._wrong.setdefault(peer, deque()).append(time.monotonic())


# --- for `timserver serve` ------------------------------------------------------------------------


def check_bind(value: str | None) -> str | None:
    """``--console-bind``: an IP address (``0.0.0.0`` / ``::`` for any), or None."""
    if value is None:
        return None
    if ip_of(value) is None:
        raise ValueError(f"{value!r} is not an IP address (e.g. 127.0.0.1, 192.168.1.5, 0.0.0.0)")
    return value


def console_token() -> str:
    """``$TIMSERVER_CONSOLE_TOKEN`` (at least 16 characters), else a fresh random token."""
    given = os.environ.get(TOKEN_ENV, "")
    return given if len(given) >= 16 else secrets.token_urlsafe(24)


def console_url(host: str, port: int, bind: str | None, token: str,
                scheme: str = "http") -> str | None:
    """The link to print, or None when the console cannot answer where the server listens."""
    listen = ip_of(host) if host not in ("", "localhost") else ipaddress.ip_address("127.0.0.1")
    wildcard = host in ("", "0.0.0.0", "::")  # noqa: S104
    bound = ip_of(bind) if bind else None
    if bound is None or bound.is_unspecified:  # loopback only, or any address
        if not (wildcard or (listen is not None and listen.is_loopback)):
            return None if bound is None else _link(scheme, host, port, token)
        return _link(scheme, "127.0.0.1" if wildcard else host, port, token)
    if not (wildcard or listen == bound):
        return None
    return _link(scheme, str(bound), port, token)


def _link(scheme: str, host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/console/#token={token}"
