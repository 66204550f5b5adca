"""The evfabric web application: one FastAPI app made of the services' routers.

* ``/access/...``: identities, tokens, topics and grants (:mod:`evfabric.access.api`), always;
* ``/metrics``, ``/monitor/...``, ``/dashboard``: monitoring, when ``evfabric.monitor.web`` imports;
* the triggers' routes, when ``evfabric.triggers.api`` imports;
* ``/openapi.json`` and ``/docs``: the schema of all of it.

A service whose module is missing (not written yet, or an optional part not installed) is left
out; :data:`MISSING` in the app's state says which and why.
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi import FastAPI

import evfabric
from evfabric.access import api as access_api
from evfabric.access.store import AccessStore

__all__ = ["OPTIONAL_ROUTERS", "create_app"]

log = logging.getLogger("evfabric.web")

#: Optional routers, as (module, attribute): included when the module imports.
OPTIONAL_ROUTERS: list[tuple[str, str]] = [("evfabric.monitor.web", "router"), ("evfabric.triggers.api", "router")]


def create_app(store: AccessStore | None = None, *, monitor: Any = None, title: str = "evfabric") -> FastAPI:
    """Build the web app. ``store``: the access store the ``/access`` routes work on (without
    one they answer 503). ``monitor``: an ``evfabric.monitor.Monitor`` for the monitoring routes."""
    app = FastAPI(
        title=title,
        version=getattr(evfabric, "__version__", "0"),
        description="evfabric web service: access control (identities, tokens, topics, grants), monitoring, "
                    "triggers. Authenticate with `Authorization: Bearer <token>`.",
    )
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
