"""The evfabric web application: one FastAPI app made of the services' routers.

* ``/access/...``: identities, tokens, topics and grants (:mod:`evfabric.access.api`), always;
* ``/metrics``, ``/monitor/...``, ``/dashboard``: monitoring, when ``evfabric.monitor.web`` imports;
* the triggers' routes, when ``evfabric.triggers.api`` imports;
* ``/openapi.json`` and ``/docs``: the schema of all of it (Swagger UI served locally: works
  offline, see :mod:`evfabric.web.docs`).

Under access control the monitoring paths require a monitoring token (:mod:`evfabric.web.guard`)
unless ``open_monitoring`` is set.

A service whose module is missing (not written yet, or an optional part not installed) is left
out; :data:`MISSING` in the app's state says which and why.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import evfabric
from evfabric.access import api as access_api
from evfabric.access.applied import AppliedChanges
from evfabric.access.store import AccessStore
from evfabric.web.docs import use_offline_docs
from evfabric.web.guard import MonitorGuard

__all__ = ["OPTIONAL_ROUTERS", "create_app"]

log = logging.getLogger("evfabric.web")

#: Optional routers, as (module, attribute): included when the module imports.
OPTIONAL_ROUTERS: list[tuple[str, str]] = [("evfabric.monitor.web", "router"), ("evfabric.triggers.api", "router")]


def create_app(store: AccessStore | None = None, *, monitor: Any = None, title: str = "evfabric",
               open_monitoring: bool = False, applied: Callable[[], None] | None = None) -> FastAPI:
    """Build the web app. ``store``: the access store the ``/access`` routes work on (without
    one they answer 503). ``monitor``: an ``evfabric.monitor.Monitor`` for the monitoring routes.
    ``open_monitoring``: serve ``/metrics``, ``/monitor/...`` and ``/dashboard`` without a token
    even when the store has identities. ``applied``: makes the broker enforce the store now (an
    :class:`~evfabric.access.control.AccessControl`'s ``reload``); a changing ``/access`` request
    is answered only after it returned (:class:`~evfabric.access.applied.AppliedChanges`)."""
    app = FastAPI(
        docs_url=None,
        title=title,
        version=getattr(evfabric, "__version__", "0"),
        description="evfabric web service: access control (identities, tokens, topics, grants), monitoring, "
                    "triggers. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.open_monitoring = open_monitoring
    use_offline_docs(app)
    app.include_router(access_api.router)
    if store is not None:
        access_api.use_access(app, store)
    app.state.missing = {}
    for module_name, attr in OPTIONAL_ROUTERS:
        try:
            module = importlib.import_module(module_name)
            router = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            app.state.missing[module_name] = f"{type(exc).__name__}: {exc}"
            continue
        app.include_router(router)
        if module_name == "evfabric.monitor.web" and monitor is not None:
            module.use_monitor(app, monitor)

    @app.get("/healthz", tags=["service"], summary="The web service is up")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "services": ["access", *(m for m, _ in OPTIONAL_ROUTERS if m not in app.state.missing)]}

    app.add_middleware(AllowHeader, app_ref=app)
    app.add_middleware(MonitorGuard, app_ref=app)
    if applied is not None:
        app.add_middleware(AppliedChanges, applied=applied)
    return app


class AllowHeader:
    """On a 405, list in ``Allow`` every method the path supports (Starlette names only those of
    the first route matching the path, which HTTP and the OpenAPI schema contradict)."""

    def __init__(self, app: ASGIApp, app_ref: FastAPI) -> None:
        self.app = app
        self.ref = app_ref
        self._table: list[tuple[re.Pattern[str], set[str]]] | None = None

    def _methods(self, path: str) -> list[str]:
        if self._table is None:
            self._table = [
                (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(p)) + "$"), {m.upper() for m in ops})
                for p, ops in self.ref.openapi().get("paths", {}).items()
            ]
        found: set[str] = set()
        for rx, methods in self._table:
            if rx.match(path):
                found |= methods
        return sorted(found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_fixed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self._methods(scope["path"])
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    headers.append((b"allow", ", ".join(methods).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_fixed)
