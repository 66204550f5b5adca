"""Relays: collect the events of many workers (or relays) and pass them up, one by one or in batches.

A :class:`Relay` listens on its own input topics (``htc.<job>.relay.<id>.<hop>``, where the hops
below it publish) and re-emits everything on its uplink: the coordinator's topic, or another
relay's input, so relays form a tree of any depth. ``mode="individual"`` forwards each message
as it came; ``mode="batch"`` sends one ``batch`` message per ``interval`` (or sooner when
``max_batch`` messages are waiting), flattening batches from relays below so the coordinator
unpacks one level only. One queue and one sender keep every worker's messages in order, which
is what lets the coordinator read a gap in sequence numbers as a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.htc.link import Body, Link
from evfabric.htc.model import BATCH, relay_pattern, relay_topic, up_topic

__all__ = ["Relay"]


class Relay:
    """One relay node. ``start()`` subscribes; ``stop()`` sends what is left and stops."""

    def __init__(
        self,
        relay_id: str,
        job: str,
        link: Link,
        *,
        uplink: str | None = None,
        mode: str = "batch",
        interval: float = 0.05,
        max_batch: int = 500,
    ) -> None:
        if mode not in ("batch", "individual"):
            raise ConfigError(f"relay mode must be 'batch' or 'individual', got {mode!r}")
        if interval <= 0 or max_batch < 1:
            raise ConfigError(f"need interval > 0 and max_batch >= 1 (got {interval}, {max_batch})")
        self.id = relay_id
        self.job = job
        self.link = link
        self.uplink = uplink or up_topic(job, relay_id)
        self.mode = mode
        self.interval = interval
        self.max_batch = max_batch
        self.received = 0
        self.sent = 0
        self._queue: asyncio.Queue[Body] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._items: list[Any] = []  # the batch being collected (kept here so stop() can send it)

    def input_topic(self, hop: str) -> str:
        """The topic ``hop`` (a worker or relay below) publishes on to reach this relay."""
        return relay_topic(self.job, self.id, hop)

    async def start(self) -> None:
        """Subscribe to this relay's inputs and start forwarding."""
        await self.link.subscribe(relay_pattern(self.job, self.id), self._on_message)
        run = self._forward_each if self.mode == "individual" else self._forward_batches
        self._task = asyncio.get_running_loop().create_task(run())

    def _on_message(self, topic: str, body: Body) -> None:
        self.received += 1
        self._queue.put_nowait(body)

    async def _forward_each(self) -> None:
        while True:
            body = await self._queue.get()
            await self.link.publish(self.uplink, body)
            self.sent += 1

    async def _forward_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._take(self._items, await self._queue.get())
            deadline = loop.time() + self.interval
            while len(self._items) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    self._take(self._items, await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            items, self._items = self._items, []
            await self._send(items)

    @staticmethod
    def _take(items: list[Any], body: Body) -> None:
        if body.get("k") == BATCH:
            items.extend(body["items"])
        else:
            items.append(body)

    async def _send(self, items: list[Any]) -> None:
        if items:
            await self.link.publish(self.uplink, {"k": BATCH, "via": self.id, "items": items})
            self.sent += 1

    async def stop(self) -> None:
        """Forward whatever is queued, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rest, self._items = self._items, []
        while not self._queue.empty():
            self._take(rest, self._queue.get_nowait())
        if self.mode == "batch":
            await self._send(rest)
        else:
            for body in rest:
                await self.link.publish(self.uplink, body)
