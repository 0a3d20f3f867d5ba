"""The web console (``/console``) and the admin extension endpoints under ``/_timserver/``.

A plugin of the pipeline (``server/hooks.py``), with two kinds of routes and two gates
(docs/console.md has the whole model):

* ``admin.py``: **admin extension endpoints** (``/_timserver/accounts...``,
  ``/_timserver/journal``) behind an app admin's UserSig, exactly like a /v4 call; an app only
  ever sees its own data;
* ``page.py``: **the console** (the page, its files and ``/_timserver/console/...``), answered
  only where ``server/access.py`` allows; what needs the server's secrets also needs the
  console token that ``timserver serve`` prints.
"""

from __future__ import annotations

from ..access import TOKEN_ENV, TOKEN_HEADER, ConsoleAccess, check_bind, console_token, console_url
from .plugin import ConsolePlugin

__all__ = ["TOKEN_ENV", "TOKEN_HEADER", "ConsoleAccess", "ConsolePlugin", "check_bind",
           "console_token", "console_url"]
