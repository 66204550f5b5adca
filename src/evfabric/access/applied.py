"""``AppliedChanges``: an access change the REST API answers is already enforced by the broker.

The broker enforces the access store through its generated config (:mod:`evfabric.access.control`
reloads it). Without this middleware the watcher thread would apply an API change within a
second, and a client acting on the answer (a grantee subscribing right after ``POST /grants``)
could be refused in between. With it, a successful request that may change the store (any method
but GET, HEAD and OPTIONS under ``/access``) is answered only once ``applied()`` returned: the
reload ran and the running servers re-read their config.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AppliedChanges"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AppliedChanges:
    """ASGI middleware: hold a changing ``/access`` answer until ``applied()`` (blocking; run in
    a worker thread) returned. ``applied`` failing is logged by its owner; the answer still goes."""

    def __init__(self, app: ASGIApp, *, applied: Callable[[], None],
                 prefix: str = "/access") -> None:
        self.app = app
        self.applied = applied
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] in _READS
                or not str(scope.get("path", "")).startswith(self.prefix)):
            await self.app(scope, receive, send)
            return

        async def send_after_applied(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) < 400:
                await anyio.to_thread.run_sync(self.applied)
            await send(message)

        await self.app(scope, receive, send_after_applied)
