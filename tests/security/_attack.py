"""Helpers for the attack tests: raw nats-py connections that record what the server refused."""

from __future__ import annotations

from typing import Any

import nats
import nats.errors

from evfabric.access import nats_options
from evfabric.fabric.roundtrip import flush
from evfabric.testing import wait_until as wait_until  # re-exported: the tests here import them from here
from evfabric.testing import wait_until_async

eventually = wait_until_async  # the name the tests here use


class Raw:
    """A raw nats-py connection (no evfabric client) that records the server's errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Any = None

    async def open(self, url: str, token: str | None, **extra: Any) -> Raw:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        opts = nats_options(token) if token else {}
        self.nc = await nats.connect(url, error_cb=on_error, connect_timeout=2, max_reconnect_attempts=2,
                                     reconnect_time_wait=0.2, **opts, **extra)
        return self

    async def collect(self, subject: str) -> list[Any]:
        """Subscribe to ``subject``; the returned list fills with the messages."""
        got: list[Any] = []

        async def cb(msg: Any) -> None:
            got.append(msg)

        await self.nc.subscribe(subject, cb=cb)
        await flush(self.nc)
        return got

    def violated(self, what: str) -> bool:
        return any("permissions violation" in e.lower() and what.lower() in e.lower() for e in self.errors)

    async def close(self) -> None:
        await self.nc.close()


