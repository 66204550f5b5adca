"""Opening a fabric client's NATS connection: credentials, the callbacks, refusals in one line.

:func:`open_connection` connects (a token becomes NATS user, password and private inbox prefix,
:mod:`evfabric.core.credentials`), maps a failure to :class:`BrokerUnavailable` or
:class:`AccessDenied` naming the servers' refusals (:func:`~evfabric.fabric.identity.connect_error`),
checks the connection quota, and from then on reconnects forever. :class:`ConnectionEvents`
routes nats-py's callbacks to the client once it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from evfabric.fabric.identity import check_admitted, connect_error

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["ConnectionEvents", "open_connection"]


class ConnectionEvents:
    """nats-py's error, disconnect and reconnect callbacks: the client's once :attr:`client` is
    set; before that, errors are kept as :attr:`refusals` (e.g. 'Authorization Violation')."""

    def __init__(self) -> None:
        self.client: AsyncClient | None = None
        self.refusals: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        if self.client is not None:
            await self.client._on_error(exc)
        else:
            self.refusals.append(str(exc))

    async def on_disconnect(self) -> None:
        if self.client is not None:
            await self.client._on_disconnect()

    async def on_reconnect(self) -> None:
        if self.client is not None:
            await self.client._on_reconnect()


async def open_connection(servers: list[str], events: ConnectionEvents, *, name: str, connect_timeout: float,
                          reconnect_wait: float, token: str | None, nats_options: dict[str, Any]) -> NatsClient:
    """A connected nats-py client for ``servers`` (see the module doc)."""
    if token and "user" not in nats_options:
        from evfabric.core.credentials import nats_options as token_options

        nats_options = {**token_options(token), **nats_options}
    try:
        nc = await nats.connect(
            servers=servers, name=name, connect_timeout=connect_timeout, allow_reconnect=True,
            max_reconnect_attempts=1, reconnect_time_wait=reconnect_wait, error_cb=events.on_error,
            disconnected_cb=events.on_disconnect, reconnected_cb=events.on_reconnect, pending_size=8 * 1024 * 1024,
            **nats_options,
        )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        credentials = bool(token or "user" in nats_options or "@" in "".join(servers))
        raise connect_error(exc, servers, events.refusals, credentials) from None
    try:
        await check_admitted(nc)  # the connection quota (access control): QuotaExceeded at connect
    except BaseException:
        await nc.close()
        raise
    nc.options["max_reconnect_attempts"] = -1  # found it once: from now on, keep coming back forever
    return nc
