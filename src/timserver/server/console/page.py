"""The web console: its page and files, and the endpoints only the page uses.

All of it answers only where ``ConsoleAccess`` allows (else: like an unknown path); what needs
the server's secrets (listing the hosted apps, signing with a hosted app's key, every app's
journal) also needs the console token.
"""

from __future__ import annotations

import mimetypes
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ... import __version__, usersig
from ...protocol.commands import COMMANDS, MAX_UINT32
from ...protocol.errors import CATALOGUE, TimError
from ...protocol.messages import PLATFORMS
from ...service.apps import AppConfigError, make_callback
from ...service.events import CALLBACK_COMMANDS
from ...service.rules import userid_problem
from ...storage import App
from ..access import ConsoleAccess
from ..envelope import ALL_METHODS
from ..hooks import Access, Endpoint, EndpointCall, Gates, Operation, ServerHandles
from ..journal import Journal
from .admin import journal_answer
from .params import MAX_SMALL_BODY, field, int_param

MAX_EXPIRE = 10 * 365 * 86400  # a UserSig made by the console is valid for at most 10 years
MAX_APPS_LISTED = 1000

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


def _verdict(found: usersig.Explanation, hosted: bool) -> dict[str, Any]:
    checked = found.checked if hosted or found.document is None else (
        "format, expiry only: this SDKAppID is not hosted here, so the signature was not checked")
    err = found.error
    if err is None:
        return {"Valid": True, "Code": 0, "CodeName": "", "Reason": "", "Checked": checked}
    spec = CATALOGUE.get(err.code)
    return {"Valid": False, "Code": err.code, "CodeName": spec.name if spec else "",
            "Reason": err.reason, "Checked": checked}


def _callback_view(app: App) -> dict[str, Any]:
    """An app's callback settings as the page shows them: the token only as set / not set."""
    cb = app.callback
    return {"SDKAppID": app.sdkappid, "Edition": app.edition, "AllowDelete": app.allow_delete,
            "Callback": None if cb is None else {"Url": cb.url, "Token": bool(cb.token),
                                                 "Commands": list(cb.commands)},
            "Commands": list(CALLBACK_COMMANDS)}


_CALLBACK_FIELDS = ("SDKAppID", "Url", "Token", "Commands", "Clear", "AllowDelete")


def console_endpoints(server: ServerHandles, access: ConsoleAccess,
                      journal: Journal, *, emulator: bool = False) -> list[Endpoint]:
    meta = _meta()
    storage = server.storage

    async def hosted(sdkappid: int) -> Any:
        return await server.apps.get(sdkappid) if 0 < sdkappid <= MAX_UINT32 else None

    async def console_meta(call: EndpointCall) -> dict[str, Any]:
        return {**meta, "Now": server.clock.now(), "TokenConfigured": bool(access.token),
                "Token": access.token_ok(call.request), "JournalCapacity": journal.size,
                "Emulator": emulator, "Platforms": list(PLATFORMS)}

    async def console_apps(call: EndpointCall) -> dict[str, Any]:
        apps = (await storage.list_apps())[:MAX_APPS_LISTED]
        listed = []
        for app in apps:
            listed.append({"SDKAppID": app.sdkappid, "Edition": app.edition,
                           "Admins": list(app.admins),
                           "Accounts": await storage.count_accounts(app.sdkappid)
                           + len(app.admins)})
        return {"Apps": listed}

    async def console_sign(call: EndpointCall) -> dict[str, Any]:
        body = await call.json(MAX_SMALL_BODY)
        sdkappid = field(body, "SDKAppID", int)
        identifier = field(body, "Identifier", str)
        expire = field(body, "Expire", int, required=False)
        expire = usersig.DEFAULT_EXPIRE if expire is None else expire
        if not 1 <= expire <= MAX_EXPIRE:
            raise TimError(70402, f"Invalid parameters: Expire must be 1 to {MAX_EXPIRE} "
                                  "seconds.")
        problem = userid_problem(identifier)
        if problem:
            raise TimError(70402, f"Invalid parameters: Identifier is invalid: {problem}.")
        app = await hosted(sdkappid)
        if app is None:
            raise TimError(60006, f"SDKAppID {sdkappid} is not hosted by this server: type "
                                  "its key in the page to sign in your browser.")
        now = int(server.clock.now(app.sdkappid))  # the app's own time (emulator clock)
        sig = usersig.generate(app.sdkappid, app.key, identifier, expire, now=now)
        return {"UserSig": sig, "SDKAppID": app.sdkappid, "Identifier": identifier,
                "Time": now, "Expire": expire}

    async def console_explain(call: EndpointCall) -> dict[str, Any]:
        body = await call.json(MAX_SMALL_BODY)
        sig = field(body, "UserSig", str).strip()
        want_app = field(body, "SDKAppID", int, required=False)
        want_id = field(body, "Identifier", str, required=False)
        try:
            doc: usersig.SigDocument | None = usersig.decode(sig)
        except usersig.SigError:
            doc = None
        app = await hosted(doc.sdkappid) if doc is not None else None
        now = int(server.clock.now(app.sdkappid if app else None))  # the app's own time
        kicked_at = (await storage.kicked_at(app.sdkappid, doc.identifier)
                     if app is not None and doc is not None else None)
        found = usersig.explain(sig, now=now, sdkappid=want_app, identifier=want_id,
                                key=app.key if app else None, kicked_at=kicked_at)
        if found.document is None:
            return {"Decoded": False, "Document": None, "Hosted": False, "Now": now,
                    **_verdict(found, False)}
        return {"Decoded": True, "Document": _document(found.document),
                "Hosted": app is not None, "Now": now, **_verdict(found, app is not None)}

    async def console_journal(call: EndpointCall) -> Any:
        return journal_answer(journal, call.params, None)

    async def hosted_or_60006(sdkappid: int) -> App:
        app = await hosted(sdkappid)
        if app is None:
            raise TimError(60006, f"SDKAppID {sdkappid} is not hosted by this server.")
        return app

    async def callback_get(call: EndpointCall) -> dict[str, Any]:
        if not call.params.get("app"):
            raise TimError(70402, "Invalid parameters: app (an SDKAppID) is required.")
        return _callback_view(await hosted_or_60006(
            int_param(call.params, "app", 0, 0, MAX_UINT32)))

    async def callback_set(call: EndpointCall) -> dict[str, Any]:
        """Change an app's callback settings, like ``timserver app set-callback`` /
        ``clear-callback`` / ``allow-delete``. The token is write-only: absent keeps the one
        set, null removes it, a string replaces it; it is never sent back."""
        body = await call.json(MAX_SMALL_BODY)
        unknown = [k for k in body if k not in _CALLBACK_FIELDS]
        if unknown:
            raise TimError(70402, f"Invalid parameters: unknown field {unknown[0]!r} (this "
                                  f"endpoint takes {', '.join(_CALLBACK_FIELDS)}).")
        app = await hosted_or_60006(field(body, "SDKAppID", int))
        clear = field(body, "Clear", bool, required=False)
        allow_delete = field(body, "AllowDelete", bool, required=False)
        changes: dict[str, Any] = {}
        if clear:
            if any(k in body for k in ("Url", "Token", "Commands")):
                raise TimError(70402, "Invalid parameters: Clear takes no Url, Token or "
                                      "Commands.")
            changes["clear_callback"] = True
        elif "Url" in body:
            url = field(body, "Url", str)
            token = body.get("Token", app.callback.token if app.callback else None)
            if token is not None and type(token) is not str:
                raise TimError(70402, "Invalid parameters: Token must be a string or null.")
            commands = body.get("Commands", list(app.callback.commands) if app.callback
                                else list(CALLBACK_COMMANDS))
            if (type(commands) is not list or not commands
                    or any(type(c) is not str for c in commands)):
                raise TimError(70402, "Invalid parameters: Commands must be a non-empty array "
                                      f"of callback commands ({', '.join(CALLBACK_COMMANDS)}).")
            try:
                changes["callback"] = make_callback(url, token, commands)
            except AppConfigError as exc:
                raise TimError(70402, f"Invalid parameters: {exc}.") from None
        elif "Token" in body or "Commands" in body:
            raise TimError(70402, "Invalid parameters: Token and Commands need the Url.")
        if allow_delete is not None:
            changes["allow_delete"] = allow_delete
        if not changes:
            raise TimError(70402, "Invalid parameters: nothing to change (Url, Clear or "
                                  "AllowDelete).")
        updated = await storage.update_app(app.sdkappid, **changes)
        if updated is None:  # deleted meanwhile
            raise TimError(60006, f"SDKAppID {app.sdkappid} is not hosted by this server.")
        return _callback_view(updated)

    return [
        # the page's own endpoints (docs/console.md): not in the OpenAPI document (listed=False)
        Endpoint("/_timserver/console/meta", {"GET": console_meta}, Access.CONSOLE,
                 summary="The console page's settings (server time, token, emulator)",
                 listed=False),
        Endpoint("/_timserver/console/apps", {"GET": console_apps}, Access.CONSOLE_TOKEN,
                 summary="The hosted apps", listed=False),
        Endpoint("/_timserver/console/usersig", {"POST": console_sign}, Access.CONSOLE_TOKEN,
                 summary="Sign a UserSig with a hosted app's key", listed=False),
        Endpoint("/_timserver/console/usersig/explain", {"POST": console_explain},
                 Access.CONSOLE, summary="Decode a UserSig and say whether it would pass",
                 listed=False),
        Endpoint("/_timserver/console/journal", {"GET": console_journal}, Access.CONSOLE_TOKEN,
                 summary="Recent answered /v4 requests of every app", listed=False),
        # the app's third-party callback settings: they make this server send requests to any
        # URL, so, like `timserver app set-callback`, they are the operator's (console token),
        # not any holder of an admin UserSig's
        Endpoint("/_timserver/console/callback", {"GET": callback_get, "POST": callback_set},
                 Access.CONSOLE_TOKEN, listed=False, docs={
                     "GET": Operation("An app's third-party callback settings"),
                     "POST": Operation("Change an app's third-party callback settings")}),
    ]


def page_routes(gates: Gates) -> list[BaseRoute]:
    """The page and its files, behind the console's gate."""
    static = _load_static()
    _unknown, gate = gates.unknown, gates.guard

    async def home(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse("/console/", status_code=307)
        return await _unknown(request)

    async def page(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return await _unknown(request)
        if request.url.path == "/console":
            return RedirectResponse("/console/", status_code=307)
        html, kind = static["index.html"]
        return Response(html, headers={**_PAGE_HEADERS, "Content-Type": kind})

    async def static_file(request: Request) -> Response:
        found = static.get(request.path_params.get("name", ""))
        if request.method not in ("GET", "HEAD") or found is None:
            return await _unknown(request)
        data, kind = found
        return Response(data, headers={**_PAGE_HEADERS, "Content-Type": kind})

    routes: list[BaseRoute] = [
        Route("/", gate(Access.CONSOLE, home), methods=ALL_METHODS),
        Route("/console", gate(Access.CONSOLE, page), methods=ALL_METHODS),
        Route("/console/", gate(Access.CONSOLE, page), methods=ALL_METHODS),
        Route("/console/static/{name}", gate(Access.CONSOLE, static_file), methods=ALL_METHODS),
    ]
    return routes
