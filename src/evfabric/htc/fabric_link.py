"""The HTC link over a real broker: publish/subscribe through ``evfabric.connect_async``,
request/reply through the same connection's nats-py client.

Events are ordinary best-effort fabric events (batched by the fabric client when they pile up).
Requests and replies are evfabric events encoded with :mod:`evfabric.core.codec` on plain NATS
request/reply subjects (the control topic itself). :attr:`FabricLink.stats` reads the
connection's own counters: NATS messages and payload bytes actually sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nats.errors

from evfabric.core.codec import decode, encode
from evfabric.core.errors import ConfigError, NotFound
from evfabric.core.event import make_event
from evfabric.fabric.roundtrip import flush
from evfabric.htc.link import Body, Handler, MessageListener, WireStats

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["FabricLink"]


class FabricLink:
    """A :class:`~evfabric.htc.link.Link` on one fabric client connection."""

    def __init__(self, client: AsyncClient, name: str) -> None:
        self.client = client
        self.nc = client.nc
        self.name = name
        self._served: dict[str, Any] = {}
        self._base = (self.nc.stats["out_msgs"], self.nc.stats["out_bytes"])
        self._stats = WireStats()

    @classmethod
    async def connect(cls, url: str, name: str) -> FabricLink:
        """Connect a fabric client (asyncio dispatch, best effort by default) as ``name``."""
        from evfabric.fabric.aio import connect_async

        client = await connect_async(url, source=name, mode="asyncio", auto_topics=False)
        return cls(client, name)

    @property
    def stats(self) -> WireStats:
        """NATS messages and payload bytes this connection sent since it was wrapped."""
        s = self._stats
        s.messages = self.nc.stats["out_msgs"] - self._base[0]
        s.bytes = self.nc.stats["out_bytes"] - self._base[1]
        return s

    async def publish(self, topic: str, body: Body) -> None:
        await self.client.publish(topic, body, delivery="best_effort")

    async def subscribe(self, pattern: str, listener: MessageListener) -> None:
        await self.client.subscribe(pattern, delivery="best_effort", listener=lambda ev: listener(ev.topic, ev.body))

    async def serve(self, topic: str, handler: Handler) -> None:
        name = self.name

        async def respond(msg: Any) -> None:
            try:
                reply = await handler(decode(msg.data).body)
            except Exception as exc:  # the requester learns why instead of timing out
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            await msg.respond(encode(make_event(topic, reply, source=name)))

        self._served[topic] = await self.nc.subscribe(topic, cb=respond)
        await flush(self.nc)  # the broker knows the responder before serve() returns

    async def unserve(self, topic: str) -> None:
        sub = self._served.pop(topic, None)
        if sub is not None:
            await sub.unsubscribe()

    async def request(self, topic: str, body: Body, timeout: float) -> Body:
        data = encode(make_event(topic, body, source=self.name))
        try:
            msg = await self.nc.request(topic, data, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise NotFound(f"no responder on {topic}") from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"no reply on {topic} within {timeout} s") from None
        reply = decode(msg.data).body
        if "error" in reply:
            raise ConfigError(f"{topic} refused the request: {reply['error']}")
        return reply

    async def flush(self) -> None:
        """Wait until everything published so far has been handed to the broker."""
        await self.client.flush(timeout=10)

    async def close(self) -> None:
        for topic in list(self._served):
            await self.unserve(topic)
        await self.client.close()
