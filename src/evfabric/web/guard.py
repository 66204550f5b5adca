"""The monitoring pages behind a token: ``/metrics``, ``/monitor/...`` and ``/dashboard``.

When the web service's access store holds identities (access control on), these paths answer
only a valid token of an administrator or of a member of the group :data:`MONITOR_GROUP`
(``evfabric group create monitoring --member prometheus`` for a scraper): 401 without a valid
token, 403 for another identity. The token is read from ``Authorization: Bearer <token>`` (a
Prometheus ``bearer_token``), or from the ``evf_token`` cookie: open
``/dashboard?token=<token>`` once in a browser; the answer sets the cookie (HttpOnly,
SameSite=Strict) and redirects to ``/dashboard``, whose polls then carry it. ``open_monitoring``
(``create_app(..., open_monitoring=True)``, ``EVFABRIC_OPEN_MONITORING=1`` for ``evfabric
serve``) leaves them open, as they are without access control.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from evfabric.core.errors import AccessDenied, NotFound

__all__ = ["COOKIE", "MONITOR_GROUP", "MONITOR_PATHS", "MonitorGuard"]

MONITOR_GROUP = "monitoring"
MONITOR_PATHS = ("/metrics", "/monitor/", "/dashboard")
COOKIE = "evf_token"


def _guarded(path: str) -> bool:
    return path == "/metrics" or path == "/dashboard" or path.startswith("/monitor/")


class MonitorGuard:
    """ASGI middleware: the monitoring paths require a monitoring token under access control."""

    def __init__(self, app: ASGIApp, app_ref: Any) -> None:
        self.app = app
        self.ref = app_ref

    def _store(self) -> Any:
        state = self.ref.state
        if getattr(state, "open_monitoring", False):
            return None
        manager = getattr(state, "evfabric_access", None)
        store = getattr(manager, "store", None)
        if store is None or not store.list_identities():
            return None  # access control off: nothing to check against
        return store

    @staticmethod
    def _token(scope: Scope) -> tuple[str | None, bool]:
        """The token the request carries, and whether it came in the query (to be made a cookie)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip(), False
        if scope["path"] == "/dashboard":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get("token"):
                return query["token"][0], True
        cookie = SimpleCookie(headers.get("cookie", ""))
        if COOKIE in cookie:
            return cookie[COOKIE].value, False
        return None, False

    def _refusal(self, store: Any, token: str | None) -> tuple[int, str] | None:
        if not token:
            return 401, "missing bearer token (Authorization: Bearer evf_...; /dashboard?token=... in a browser)"
        try:
            identity, _ = store.authenticate(token)
        except (AccessDenied, NotFound) as exc:
            return 401, str(exc)
        if identity.admin:
            return None
        try:
            members = store.get_group(MONITOR_GROUP).members
        except NotFound:
            members = ()
        if identity.name in members:
            return None
        return 403, f"{identity.name} may not read the monitoring pages: administrators and group {MONITOR_GROUP!r} only"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        store = self._store()
        if store is None:
            await self.app(scope, receive, send)
            return
        token, from_query = self._token(scope)
        refusal = self._refusal(store, token)
        if refusal is not None:
            status, detail = refusal
            headers = [(b"content-type", b"application/json")]
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
            return
        if from_query:  # keep the token out of the address bar and history: a cookie, then the clean page
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/dashboard"), (b"set-cookie", cookie.encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
