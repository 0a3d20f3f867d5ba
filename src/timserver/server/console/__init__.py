"""The web console (``/console``) and the extension endpoints under ``/_timserver/``.

Two kinds of routes, two gates (docs/console.md has the whole model):

* **Admin extension endpoints** (``/_timserver/accounts...``, ``/_timserver/journal``): an app's
  admin credentials in the query (``sdkappid``, ``identifier``, ``usersig``), checked by
  ``Dispatcher.authenticate`` exactly like a /v4 call; an app only ever sees its own data.
  Import, delete and kick run the /v4 commands' own parser, rate limit and handler.
* **The console** (the page, its static files and ``/_timserver/console/...``): answered only on
  an allowed local address (loopback unless ``--console-bind``) and, on loopback, only for a
  loopback ``Host`` (DNS rebinding). Anywhere else it answers exactly like an unknown path. What
  needs a secret of the server (listing the hosted apps, signing a UserSig with a hosted app's
  key, the journal of every app) also needs the console token that ``timserver serve`` prints.

Every answer of these endpoints, good or bad, is Tencent's envelope with HTTP 200.
"""

from __future__ import annotations

from .routes import (
    TOKEN_ENV,
    TOKEN_HEADER,
    ConsoleAccess,
    check_bind,
    console_token,
    console_url,
    extension_routes,
)

__all__ = ["TOKEN_ENV", "TOKEN_HEADER", "ConsoleAccess", "check_bind", "console_token",
           "console_url", "extension_routes"]
