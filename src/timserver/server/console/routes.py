"""Routes of the web console and of the ``/_timserver/`` extension endpoints.

See the package docstring for the two gates, and docs/console.md for the reasoning.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ... import __version__, usersig
from ...protocol.commands import BY_NAME, COMMANDS, Command
from ...protocol.errors import CATALOGUE, TimError
from ...service.rules import profile_problem, userid_problem
from ...storage import App, StorageError
from ..bodies import read_json_object
from ..dispatch import MAX_BODY_BYTES, CallInfo, Dispatcher, parse_query
from ..journal import Journal

log = logging.getLogger("timserver.console")

TOKEN_HEADER = "X-Timserver-Console-Token"  # noqa: S105 (a header name)
JSON_TYPE = "application/json; charset=utf-8"
MAX_QUERY_BYTES = 16 * 1024
MAX_SMALL_BODY = 32 * 1024  # sign / explain / kick: a few hundred bytes in practice
BODY_TIMEOUT = 10.0
MAX_PAGE = 200  # accounts per page
MAX_EXPIRE = 10 * 365 * 86400  # a UserSig made by the console is valid for at most 10 years
MAX_APPS_LISTED = 1000
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

#: The page may call any API endpoint (the debugger can target Tencent's hosts), but loads
#: nothing but its own files.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' http: https:; form-action 'none'; frame-ancestors 'none'; "
       "base-uri 'none'")
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_API_HEADERS = {"Content-Type": JSON_TYPE, "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff"}

Handler = Callable[[Request], Awaitable[Response]]
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


# --- answers ------------------------------------------------------------------------------------


def ok(fields: dict[str, Any] | None = None) -> Response:
    body = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **(fields or {})}
    return Response(_encoder.encode(body), headers=_API_HEADERS)


def fail(code: int, info: str) -> Response:
    body = {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}
    return Response(_encoder.encode(body), headers=_API_HEADERS)


def _envelope(methods: Sequence[str], work: Handler) -> Handler:
    """Method check, then ``work``; any failure becomes the envelope (never an HTTP error)."""
    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            return fail(60008, f"Malformed HTTP request: method {request.method} is not "
                               f"supported here; use {' or '.join(methods)}.")
        try:
            return await work(request)
        except TimError as err:
            return fail(err.code, err.info)
        except StorageError:
            log.exception("storage failed in %s", request.url.path)
            return fail(70500, "Internal server error: the database failed; retry.")
        except Exception:
            log.exception("internal error in %s", request.url.path)
            return fail(70500, "Internal server error: retry.")
    return endpoint


def _query(request: Request) -> dict[str, str]:
    raw = request.scope.get("query_string", b"")
    if len(raw) > MAX_QUERY_BYTES:
        raise TimError(60002, f"HTTP parse error: the query string is longer than "
                              f"{MAX_QUERY_BYTES} bytes.")
    return parse_query(raw)


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise TimError(70402, f"Invalid parameters: {name} must be an integer from {low} to "
                              f"{high}.")
    return int(raw)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _text_param(params: dict[str, str], name: str, max_chars: int = 128) -> str:
    value = params.get(name, "")
    if len(value) > max_chars:
        raise TimError(70402, f"Invalid parameters: {name} is longer than {max_chars} "
                              "characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TimError(70402, f"Invalid parameters: {name} is not valid UTF-8.") from None
    if _CONTROL.search(value):  # no UserID has one, and PostgreSQL refuses NUL in text (70500)
        raise TimError(70402, f"Invalid parameters: {name} contains a control character.")
    return value


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    return await read_json_object(request, limit, BODY_TIMEOUT)


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if type(value) is not kind:  # bool is not an int here
        what = "is missing" if name not in body else "has the wrong type"
        expected = "an integer" if kind is int else "a string"
        raise TimError(70402, f"Invalid parameters: {name} {what} (expected {expected}).")
    return value


# --- who may see the console ----------------------------------------------------------------------


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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


class ConsoleAccess:
    """Where the console answers and who holds its token.

    ``bind`` None: only connections made to a loopback address of this machine, with a
    loopback ``Host`` header (a DNS-rebinding page has its own name there). ``bind`` an
    address: connections made to that address (``0.0.0.0`` / ``::``: to any address).
    The local address is the socket's own (ASGI ``server``), which no header can forge.
    """

    def __init__(self, enabled: bool = True, bind: str | None = None,
                 token: str | None = None) -> None:
        self.enabled = enabled
        self.bind = _ip(bind) if bind else None
        if bind and self.bind is None:
            raise ValueError(f"--console-bind needs an IP address, not {bind!r}")
        self.token = token or None

    def allows(self, request: Request) -> bool:
        if not self.enabled:
            return False
        server = request.scope.get("server")
        local = _ip(server[0]) if server else None
        if local is None:
            return False
        if self.bind is None:
            if not local.is_loopback:
                return False
            host = _host_name(request.headers.get("host", ""))
            host_ip = _ip(host)
            return (host == "localhost" or host.endswith(".localhost")
                    or (host_ip is not None and host_ip.is_loopback))
        return self.bind.is_unspecified or local == self.bind

    def token_ok(self, request: Request) -> bool:
        given = request.headers.get(TOKEN_HEADER, "")
        return bool(self.token) and hmac.compare_digest(
            given.encode("utf-8", "replace"), self.token.encode("utf-8"))  # type: ignore[union-attr]

    def require_token(self, request: Request) -> None:
        if self.token is None:
            raise TimError(60004, "This server runs without a console token, so it signs "
                                  "nothing for the console: type the app's key in the page "
                                  "instead (it stays in your browser).")
        if not self.token_ok(request):
            raise TimError(60004, "The console token is missing or wrong: open the console "
                                  "link that `timserver serve` printed (it carries the token).")


# --- static files ---------------------------------------------------------------------------------


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    folder = resources.files(__package__) / "static"
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
                kind += "; charset=utf-8"
            files[entry.name] = (entry.read_bytes(), kind)
    return files


# --- the endpoints ------------------------------------------------------------------------------


def _meta() -> dict[str, Any]:
    return {
        "Version": __version__,
        "Commands": [{"Service": c.service, "Command": c.name, "Path": c.path,
                      "Summary": c.summary, "Sample": c.sample, "MaxItems": c.max_items,
                      "DefaultRate": c.default_rate} for c in COMMANDS],
        "Errors": [{"ErrorCode": s.code, "Name": s.name, "Meaning": s.meaning,
                    "Retryable": s.retryable} for s in sorted(CATALOGUE.values(),
                                                               key=lambda s: s.code)],
    }


def _document(doc: usersig.SigDocument) -> dict[str, Any]:
    return {"TLS.ver": doc.ver, "TLS.identifier": doc.identifier, "TLS.sdkappid": doc.sdkappid,
            "TLS.time": doc.time, "TLS.expire": doc.expire, "TLS.sig": doc.sig,
            "TLS.userbuf": doc.userbuf}


def _verdict(err: usersig.SigError | None, checked: str) -> dict[str, Any]:
    if err is None:
        return {"Valid": True, "Code": 0, "CodeName": "", "Reason": "", "Checked": checked}
    spec = CATALOGUE.get(err.code)
    return {"Valid": False, "Code": err.code, "CodeName": spec.name if spec else "",
            "Reason": err.reason, "Checked": checked}


def extension_routes(access: ConsoleAccess, dispatcher: Dispatcher, journal: Journal,
                     fallback: Handler) -> list[Route]:
    """The routes to put before the catch-all; ``fallback`` answers what the console refuses."""
    storage = dispatcher.storage
    meta = _meta()

    async def admin(request: Request) -> App:
        return await dispatcher.authenticate(_query(request), CallInfo(), require_random=False)

    async def run(cmd: Command, app: App, body: dict[str, Any]) -> Any:
        """A /v4 command's own rules: its parser, the app's rate limit, its handler."""
        await dispatcher.check_rate(app, cmd)
        return await dispatcher.run(cmd, app, cmd.parse(body))

    # --- admin extension endpoints -------------------------------------------------------------

    async def accounts_list(request: Request) -> Response:
        app = await admin(request)
        params = _query(request)
        prefix = _text_param(params, "prefix")
        after = _text_param(params, "after")
        limit = _int_param(params, "limit", 50, 1, MAX_PAGE)
        page = await storage.list_accounts(app.sdkappid, prefix=prefix, after=after,
                                           limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        total = await storage.count_accounts(app.sdkappid) + len(app.admins)
        return ok({
            "SDKAppID": app.sdkappid, "Total": total,
            "Accounts": [{"UserID": a.user_id, "Nick": a.nick, "FaceUrl": a.face_url,
                          "IsAdmin": a.is_admin, "CreatedAt": round(a.created_at, 3)}
                         for a in page],
            "Next": page[-1].user_id if more and page else "",
        })

    async def accounts_import(request: Request) -> Response:
        app = await admin(request)
        body = await _json_body(request, MAX_BODY_BYTES)
        cmd = BY_NAME["multiaccount_import"]
        resp = await run(cmd, app, body)
        parsed = cmd.parse(body)
        items: dict[str, Any] = {}
        if isinstance(parsed.AccountList, list):
            for item in parsed.AccountList:
                items.setdefault(item.UserID, item)
        failures = []
        for uid in resp.FailAccounts:  # why each failed: the same rules, asked again
            item = items.get(uid)
            problem = userid_problem(uid)
            if problem:
                reason = f"UserID is invalid: {problem}."
            elif item is not None and (profile_problem("Nick", item.Nick)
                                       or profile_problem("FaceUrl", item.FaceUrl)):
                reason = (profile_problem("Nick", item.Nick)
                          or profile_problem("FaceUrl", item.FaceUrl)) + "."
            else:
                reason = "The app's edition allows no more accounts (70398)."
            failures.append({"UserID": uid, "Reason": reason})
        wanted = parsed.Accounts if isinstance(parsed.Accounts, list) else list(items)
        imported = len(set(wanted) - set(resp.FailAccounts))
        return ok({"Imported": imported, "FailAccounts": resp.FailAccounts,
                   "Failures": failures})

    async def accounts_delete(request: Request) -> Response:
        app = await admin(request)
        body = await _json_body(request, MAX_BODY_BYTES)
        resp = await run(BY_NAME["account_delete"], app, body)
        return ok({"ResultItem": msgspec.to_builtins(resp.ResultItem)})

    async def accounts_kick(request: Request) -> Response:
        app = await admin(request)
        body = await _json_body(request, MAX_SMALL_BODY)
        await run(BY_NAME["kick"], app, body)
        return ok()

    def journal_answer(params: dict[str, str], sdkappid: int | None) -> Response:
        limit = _int_param(params, "limit", 200, 1, max(journal.size, 1))
        after = _int_param(params, "after", 0, 0, 2**63 - 1)
        fmt = params.get("format", "json")
        if fmt not in ("json", "ndjson"):
            raise TimError(70402, "Invalid parameters: format must be json or ndjson.")
        entries = journal.entries(sdkappid=sdkappid, after=after, limit=limit)
        if fmt == "ndjson":
            name = f"timserver-journal-{sdkappid if sdkappid is not None else 'all'}.ndjson"
            return Response(journal.ndjson(entries), headers={
                "Content-Type": "application/x-ndjson; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        return ok({"Worker": journal.pid, "Capacity": journal.size, "Last": journal.last_seq,
                   "Entries": entries})

    async def journal_for_app(request: Request) -> Response:
        app = await admin(request)
        return journal_answer(_query(request), app.sdkappid)

    # --- the console ---------------------------------------------------------------------------

    static = _load_static()

    def console_only(work: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not access.allows(request):
                return await fallback(request)
            return await work(request)
        return endpoint

    async def home(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse("/console/", status_code=307)
        return await fallback(request)

    async def page(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return await fallback(request)
        if request.url.path == "/console":
            return RedirectResponse("/console/", status_code=307)
        html, kind = static["index.html"]
        return Response(html, headers={**_PAGE_HEADERS, "Content-Type": kind})

    async def static_file(request: Request) -> Response:
        found = static.get(request.path_params.get("name", ""))
        if request.method not in ("GET", "HEAD") or found is None:
            return await fallback(request)
        data, kind = found
        return Response(data, headers={**_PAGE_HEADERS, "Content-Type": kind})

    async def console_meta(request: Request) -> Response:
        return ok({**meta, "Now": dispatcher.clock.now(), "TokenConfigured": bool(access.token),
                   "Token": access.token_ok(request), "JournalCapacity": journal.size})

    async def console_apps(request: Request) -> Response:
        access.require_token(request)
        apps = (await storage.list_apps())[:MAX_APPS_LISTED]
        listed = []
        for app in apps:
            listed.append({"SDKAppID": app.sdkappid, "Edition": app.edition,
                           "Admins": list(app.admins),
                           "Accounts": await storage.count_accounts(app.sdkappid)
                           + len(app.admins)})
        return ok({"Apps": listed})

    async def console_sign(request: Request) -> Response:
        access.require_token(request)
        body = await _json_body(request, MAX_SMALL_BODY)
        sdkappid = _field(body, "SDKAppID", int)
        identifier = _field(body, "Identifier", str)
        expire = _field(body, "Expire", int, required=False)
        expire = usersig.DEFAULT_EXPIRE if expire is None else expire
        if not 1 <= expire <= MAX_EXPIRE:
            raise TimError(70402, f"Invalid parameters: Expire must be 1 to {MAX_EXPIRE} "
                                  "seconds.")
        problem = userid_problem(identifier)
        if problem:
            raise TimError(70402, f"Invalid parameters: Identifier is invalid: {problem}.")
        app = await dispatcher.apps.get(sdkappid) if 0 < sdkappid <= 4294967295 else None
        if app is None:
            raise TimError(60006, f"SDKAppID {sdkappid} is not hosted by this server: type "
                                  "its key in the page to sign in your browser.")
        now = int(dispatcher.clock.now(app.sdkappid))  # the app's own time (emulator clock)
        sig = usersig.generate(app.sdkappid, app.key, identifier, expire, now=now)
        return ok({"UserSig": sig, "SDKAppID": app.sdkappid, "Identifier": identifier,
                   "Time": now, "Expire": expire})

    async def console_explain(request: Request) -> Response:
        body = await _json_body(request, MAX_SMALL_BODY)
        sig = _field(body, "UserSig", str).strip()
        want_app = _field(body, "SDKAppID", int, required=False)
        want_id = _field(body, "Identifier", str, required=False)
        now = int(dispatcher.clock.now())
        try:
            doc = usersig.decode(sig)
        except usersig.SigError as err:
            return ok({"Decoded": False, "Document": None, "Hosted": False, "Now": now,
                       **_verdict(err, "format")})
        app = await dispatcher.apps.get(doc.sdkappid) if 0 < doc.sdkappid <= 4294967295 else None
        if app is not None:
            now = int(dispatcher.clock.now(app.sdkappid))  # the app's own time (emulator clock)
        checked = ("format, SDKAppID, identifier, signature (with this server's key), expiry, "
                   "kick" if app else "format, expiry only: this SDKAppID is not hosted here, "
                   "so the signature was not checked")
        error = None
        try:
            if want_app is not None and doc.sdkappid != want_app:
                raise usersig.SigError(70014, f"It was issued for SDKAppID {doc.sdkappid}, not "
                                              f"{want_app}.")
            if want_id is not None and want_id != "" and doc.identifier != want_id:
                raise usersig.SigError(70013, f"It was issued for identifier "
                                              f"{doc.identifier!r}, not {want_id!r}.")
            if app is not None:
                usersig.verify(sig, sdkappid=app.sdkappid, identifier=doc.identifier,
                               key=app.key, now=now,
                               kicked_at=await storage.kicked_at(app.sdkappid, doc.identifier))
            elif now > doc.expires_at:
                raise usersig.SigError(70001, f"It expired {now - doc.expires_at} s ago.")
        except usersig.SigError as err:
            error = err
        return ok({"Decoded": True, "Document": _document(doc), "Hosted": app is not None,
                   "Now": now, **_verdict(error, checked)})

    async def console_journal(request: Request) -> Response:
        access.require_token(request)
        return journal_answer(_query(request), None)

    routes = [
        Route("/_timserver/accounts", _envelope(["GET"], accounts_list), methods=ALL_METHODS),
        Route("/_timserver/accounts/import", _envelope(["POST"], accounts_import),
              methods=ALL_METHODS),
        Route("/_timserver/accounts/delete", _envelope(["POST"], accounts_delete),
              methods=ALL_METHODS),
        Route("/_timserver/accounts/kick", _envelope(["POST"], accounts_kick),
              methods=ALL_METHODS),
        Route("/_timserver/journal", _envelope(["GET"], journal_for_app), methods=ALL_METHODS),
    ]
    if access.enabled:
        routes += [
            Route("/", console_only(home), methods=ALL_METHODS),
            Route("/console", console_only(page), methods=ALL_METHODS),
            Route("/console/", console_only(page), methods=ALL_METHODS),
            Route("/console/static/{name}", console_only(static_file), methods=ALL_METHODS),
            Route("/_timserver/console/meta", console_only(_envelope(["GET"], console_meta)),
                  methods=ALL_METHODS),
            Route("/_timserver/console/apps", console_only(_envelope(["GET"], console_apps)),
                  methods=ALL_METHODS),
            Route("/_timserver/console/usersig",
                  console_only(_envelope(["POST"], console_sign)), methods=ALL_METHODS),
            Route("/_timserver/console/usersig/explain",
                  console_only(_envelope(["POST"], console_explain)), methods=ALL_METHODS),
            Route("/_timserver/console/journal",
                  console_only(_envelope(["GET"], console_journal)), methods=ALL_METHODS),
        ]
    return routes


# --- for `timserver serve` ------------------------------------------------------------------------

TOKEN_ENV = "TIMSERVER_CONSOLE_TOKEN"  # noqa: S105 (an environment variable name)


def check_bind(value: str | None) -> str | None:
    """``--console-bind``: an IP address (``0.0.0.0`` / ``::`` for any), or None."""
    if value is None:
        return None
    if _ip(value) is None:
        raise ValueError(f"{value!r} is not an IP address (e.g. 127.0.0.1, 192.168.1.5, 0.0.0.0)")
    return value


def console_token() -> str:
    """``$TIMSERVER_CONSOLE_TOKEN`` (at least 16 characters), else a fresh random token."""
    import os
    import secrets

    given = os.environ.get(TOKEN_ENV, "")
    return given if len(given) >= 16 else secrets.token_urlsafe(24)


def console_url(host: str, port: int, bind: str | None, token: str,
                scheme: str = "http") -> str | None:
    """The link to print, or None when the console cannot answer where the server listens."""
    listen = _ip(host) if host not in ("", "localhost") else ipaddress.ip_address("127.0.0.1")
    wildcard = host in ("", "0.0.0.0", "::")  # noqa: S104
    bound = _ip(bind) if bind else None
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
