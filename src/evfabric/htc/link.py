"""The small interface the HTC system talks through, and its in-process implementation.

Workers, relays and coordinators need only four things: ``publish`` a body on a topic (best
effort), ``subscribe`` a listener ``(topic, body)`` to a pattern, ``serve`` request/reply on a
topic, and ``request`` a reply. :class:`Link` states that; implementations:

* :class:`LocalHub` / :class:`LocalLink`: the in-process :class:`~evfabric.local.EventService`
  (asyncio mode) for publish/subscribe, and a direct call for request/reply (unit tests);
* :class:`~evfabric.htc.fabric_link.FabricLink`: a real broker (publish/subscribe through
  ``evfabric.connect`` when available, request/reply through nats-py);
* :class:`LossyLink`: wraps another and drops a chosen fraction of published messages, to
  exercise reconciliation.

Every link counts what it sends in :attr:`Link.stats`: published messages, and requests
with their replies, with payload bytes measured as evfabric's MessagePack event encoding, so the
numbers compare across links.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from evfabric.core.codec import encode
from evfabric.core.errors import NotFound
from evfabric.core.event import Event, make_event
from evfabric.local.service import EventService

__all__ = ["Handler", "Link", "LocalHub", "LocalLink", "LossyLink", "MessageListener", "WireStats"]

Body = dict[str, Any]
MessageListener = Callable[[str, Body], None]
Handler = Callable[[Body], Awaitable[Body]]


@dataclass
class WireStats:
    """Messages and payload bytes one component sent (requests count their reply too)."""

    messages: int = 0
    bytes: int = 0
    dropped: int = 0  # messages a LossyLink threw away on purpose

    def add(self, other: WireStats) -> WireStats:
        """Sum in place; returns self."""
        self.messages += other.messages
        self.bytes += other.bytes
        self.dropped += other.dropped
        return self


class Link(Protocol):
    """What the HTC components need from a fabric. Requests raise NotFound or TimeoutError."""

    @property
    def stats(self) -> WireStats:
        """Messages and bytes this link sent."""
        ...

    async def publish(self, topic: str, body: Body) -> None: ...

    async def subscribe(self, pattern: str, listener: MessageListener) -> None: ...

    async def serve(self, topic: str, handler: Handler) -> None: ...

    async def unserve(self, topic: str) -> None: ...

    async def request(self, topic: str, body: Body, timeout: float) -> Body: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class LocalHub:
    """One in-process "network": an asyncio-mode EventService plus a table of request handlers.

    Create it on the running loop; give each component its own :meth:`link`.
    """

    def __init__(self) -> None:
        self.service = EventService(source="htc", mode="asyncio", queue_size=1_000_000)
        self.handlers: dict[str, Handler] = {}

    def link(self, name: str) -> LocalLink:
        """A link for component ``name`` (its ``source`` on published events)."""
        return LocalLink(self, name)

    def close(self) -> None:
        """Close the underlying service."""
        self.service.close()


class LocalLink:
    """A component's view of a :class:`LocalHub`; counts what it sends."""

    def __init__(self, fabric: LocalHub, name: str) -> None:
        self.fabric = fabric
        self.name = name
        self.stats = WireStats()

    async def publish(self, topic: str, body: Body) -> None:
        event = self.fabric.service.publish(topic, body, source=self.name)
        self._count(event)

    def _count(self, event: Event) -> None:
        self.stats.messages += 1
        self.stats.bytes += len(encode(event))

    async def subscribe(self, pattern: str, listener: MessageListener) -> None:
        self.fabric.service.subscribe(pattern, listener=lambda ev: listener(ev.topic, ev.body))

    async def serve(self, topic: str, handler: Handler) -> None:
        self.fabric.handlers[topic] = handler

    async def unserve(self, topic: str) -> None:
        self.fabric.handlers.pop(topic, None)

    async def request(self, topic: str, body: Body, timeout: float) -> Body:
        handler = self.fabric.handlers.get(topic)
        if handler is None:
            raise NotFound(f"no responder on {topic}")
        self._count(make_event(topic, body, source=self.name))
        async with asyncio.timeout(timeout):  # unlike wait_for, never swallows a cancellation
            reply = await handler(body)
        self._count(make_event(topic, reply, source=self.name))
        return reply

    async def flush(self) -> None:
        await self.fabric.service.drain()

    async def close(self) -> None:
        return None


class LossyLink:
    """Drops each published message whose kind (``body["k"]``) is in ``kinds`` with probability ``rate``.

    Requests and replies are never dropped (request/reply either answers or fails). Drops are
    counted in ``stats.dropped``; the generator is seeded, so a run drops a reproducible
    fraction (which messages exactly depends on timing).
    """

    def __init__(self, inner: Link, rate: float, *, seed: int = 0, kinds: Collection[str] | None = None) -> None:
        self.inner = inner
        self.rate = rate
        self.kinds = None if kinds is None else frozenset(kinds)
        self._rng = random.Random(seed)

    @property
    def stats(self) -> WireStats:
        """The inner link's counters (drops are added to them)."""
        return self.inner.stats

    async def publish(self, topic: str, body: Body) -> None:
        if (self.kinds is None or body.get("k") in self.kinds) and self._rng.random() < self.rate:
            self.stats.dropped += 1
            return
        await self.inner.publish(topic, body)

    async def subscribe(self, pattern: str, listener: MessageListener) -> None:
        await self.inner.subscribe(pattern, listener)

    async def serve(self, topic: str, handler: Handler) -> None:
        await self.inner.serve(topic, handler)

    async def unserve(self, topic: str) -> None:
        await self.inner.unserve(topic)

    async def request(self, topic: str, body: Body, timeout: float) -> Body:
        return await self.inner.request(topic, body, timeout)

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()
