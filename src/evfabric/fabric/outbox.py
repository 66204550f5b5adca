"""The way out of a client: an event's route (its delivery and subject) and its admission.

Both front ends (the asyncio :class:`~evfabric.fabric.aio.AsyncClient` and the synchronous
:class:`~evfabric.fabric.client.Client`) build an event, ask the :class:`Outbox` where it goes
(:meth:`Outbox.route`: the delivery the caller or the policy chose, and the subject, which carries
the publisher identity, the partition of the durable topic covering it, or a raw topic's own
subject) and hand it in (:meth:`Outbox.offer`: to the batcher, or to the raw topics' sender; when
the batcher is full, :meth:`Outbox.full` applies the overflow policy). All of it is thread-safe.

Routing needs the topic covering the event's topic; the catalog answers from its cache, from
cached parts (a namespace known to hold no topic, a durable topic known above), or, on a real miss,
from the broker: a publishing thread waits for that answer once per topic, an expired "no topic
here" answer stands while it is asked again in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import count

from evfabric.core.errors import QueueFull
from evfabric.core.event import BEST_EFFORT, Event
from evfabric.fabric.batching import Batcher, Ticket
from evfabric.fabric.catalog import MISSING
from evfabric.fabric.delivery import DeliveryPolicy, check_delivery
from evfabric.fabric.foreign import ForeignSender
from evfabric.fabric.losses import LossReport
from evfabric.fabric.stats import FabricStats
from evfabric.fabric.streams import TopicConfig
from evfabric.fabric.subjects import PREFIX, partition_of, topic_subject
from evfabric.fabric.topic_catalog import TopicCatalog

__all__ = ["OVERFLOW_POLICIES", "Outbox"]

#: what ``overflow=`` may say when the batcher is full
OVERFLOW_POLICIES = ("block", "raise", "drop")
_EVF = PREFIX + "."  # the head of every evfabric subject; a raw topic's subject has none


class Outbox:
    """Routes and admits a client's events (see the module docstring)."""

    def __init__(self, *, identity: str, policy: DeliveryPolicy, catalog: TopicCatalog, batcher: Batcher,
                 wake: Callable[[], None], foreign: ForeignSender, stats: FabricStats, losses: LossReport,
                 overflow: str, loop: asyncio.AbstractEventLoop, on_loop_thread: Callable[[], bool],
                 call_on_loop: Callable[..., None]) -> None:
        self.identity = identity  # the publisher token of every subject (docs/wire.md section 1)
        self.policy = policy
        self.catalog = catalog
        self.batcher = batcher
        self.wake = wake  # the publisher's: drain the batcher soon (call on the loop)
        self.foreign = foreign
        self.stats = stats
        self.losses = losses
        self.overflow = overflow
        self._loop = loop
        self._on_loop_thread = on_loop_thread
        self._call_on_loop = call_on_loop
        self._spread = count()
        self._refreshing: set[str] = set()  # topics whose catalog answer is being asked again

    # -- routing -----------------------------------------------------------------------------------

    def route(self, event: Event, delivery: str | None) -> tuple[str, str]:
        """(subject, delivery) for ``event``: the delivery chosen for it, stamped in ``event.delivery``."""
        if delivery is not None:
            chosen = check_delivery(delivery)
        elif self.policy.has_rules:
            chosen = self.policy.for_event(event)
        else:
            chosen = self.policy.for_topic(event.topic)
        if event.delivery != chosen:
            event.delivery = chosen  # type: ignore[assignment]
        cover = self.catalog.covering(event.topic)
        if cover is None and not self.catalog.known(event.topic):
            cover = self.catalog.from_parts(event.topic)
            if cover is MISSING:
                cover = None
                if self.catalog.expired(event.topic):  # "no topic" stands while it is asked again
                    self._refresh(event.topic)
                else:
                    cover = self._resolve(event.topic)
        if cover is None or cover.partitions == 1:
            if cover is not None and cover.raw:
                return event.topic, chosen  # a raw topic: its own subject (docs/wire.md 5)
            return topic_subject(event.topic, 0, self.identity), chosen
        if event.key is not None:
            return topic_subject(event.topic, partition_of(event.key, cover.partitions), self.identity), chosen
        # unkeyed events spread over partitions in runs, so that runs still batch well
        return topic_subject(event.topic, (next(self._spread) >> 8) % cover.partitions, self.identity), chosen

    async def known(self, topic: str) -> None:
        """Make sure :meth:`route` can answer for ``topic`` without waiting (the coroutine paths
        call this first, on the loop)."""
        if (not self.catalog.known(topic) and self.catalog.from_parts(topic) is MISSING
                and not self.catalog.expired(topic)):
            await self.catalog.resolve(topic)

    def _resolve(self, topic: str) -> TopicConfig | None:
        """The topic covering ``topic`` on a cache miss: asked now from another thread; on the
        loop (where the coroutine paths resolve first) looked up in the background."""
        if self._on_loop_thread():
            self._loop.create_task(self.catalog.resolve(topic))
            return None
        return asyncio.run_coroutine_threadsafe(self.catalog.resolve(topic), self._loop).result(10)

    def _refresh(self, topic: str) -> None:
        """Ask the catalog about ``topic`` again in the background (once at a time per topic): a
        publisher on many topics must not wait for a lookup each time an answer expires."""
        if topic in self._refreshing:
            return
        self._refreshing.add(topic)

        async def refresh() -> None:
            try:
                await self.catalog.resolve(topic)
            finally:
                self._refreshing.discard(topic)

        self._call_on_loop(lambda: self._loop.create_task(refresh()))

    # -- admission ---------------------------------------------------------------------------------

    def offer(self, event: Event, subject: str, chosen: str) -> Ticket | None:
        """Hand ``event`` to the batcher; None when it is full (see ``overflow``)."""
        if not subject.startswith(_EVF):
            return self._offer_foreign([event], subject, chosen)
        ticket, wake = self.batcher.add(subject, chosen, event)
        if ticket is None:
            return None
        self.stats.published += 1
        if wake:
            self._call_on_loop(self.wake)
        return ticket

    def offer_many(self, events: list[Event], subject: str, chosen: str) -> Ticket | None:
        """Hand several events of one subject to the batcher (all or none)."""
        if not subject.startswith(_EVF):
            return self._offer_foreign(events, subject, chosen)
        ticket, wake = self.batcher.add_many(subject, chosen, events)
        if ticket is None:
            return None
        self.stats.published += len(events)
        if wake:
            self._call_on_loop(self.wake)
        return ticket

    def _offer_foreign(self, events: list[Event], subject: str, chosen: str) -> Ticket:
        self.stats.published += len(events)
        return self.foreign.send(events, subject, chosen)

    def full(self, event: Event, chosen: str) -> Ticket | None:
        """Apply the overflow policy to a full batcher: a done ticket (dropped), None (wait), or raise."""
        if self.overflow == "drop" and chosen == BEST_EFFORT:
            self.losses.drop("overflow", event.topic, 1)
            return Ticket.finished()
        if self.overflow == "block":
            return None  # the caller waits for room (a thread blocks; a coroutine sleeps)
        raise QueueFull(f"{self.batcher.max_pending} events await the broker; event {event.id} on {event.topic!r} "
                        f"was not accepted (overflow='raise')")

    async def offer_waiting(self, event: Event, subject: str, chosen: str) -> Ticket:
        """:meth:`offer` from a coroutine: under ``overflow='block'`` waits for room without
        blocking the loop."""
        while True:
            ticket = self.offer(event, subject, chosen) or self.full(event, chosen)
            if ticket is not None:
                return ticket
            await asyncio.sleep(0.001)
