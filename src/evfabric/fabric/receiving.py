"""The receiving half of a fabric client: which feeds and consumers each subscription has.

:class:`Receiving` keeps the client's subscriptions and their broker side: for best effort one
shared :class:`~evfabric.fabric.consumers.CoreFeed` per subject filter (a group member has its
own), for reliable one :class:`~evfabric.fabric.pull.PullConsumer` per stream of the pattern's
topics (per partition for ordered groups). It creates them on subscribe, stops them on
unsubscribe (a shared feed when its last subscription goes; private anonymous consumers are
deleted, named and group consumers stay on the broker), and tells them when the connection
comes back. :class:`~evfabric.fabric.aio.AsyncClient` delegates its subscribe half here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from evfabric.core.errors import ConfigError, NotFound
from evfabric.core.event import Event
from evfabric.core.topics import MANY, ONE, Pattern
from evfabric.fabric.batching import Ticket
from evfabric.fabric.catalog import namespace_of
from evfabric.fabric.consumers import CoreFeed, DecodedRecently, Wiring
from evfabric.fabric.deadletter import dead_letter
from evfabric.fabric.positions import EventLag, check_position
from evfabric.fabric.pull import PullConsumer, consumer_config
from evfabric.fabric.raw_watch import RawTopicWatch
from evfabric.fabric.replay import Start, deliver_policy, start_position
from evfabric.fabric.streams import TopicConfig, create_topic
from evfabric.fabric.subjects import ANONYMOUS, intersect, pattern_filter, stream_name, topic_subject
from evfabric.fabric.subscription import FabricSubscription
from evfabric.wire.subject import pattern_tokens

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["Receiving"]


class Receiving:
    """The subscriptions of one client and the feeds and consumers behind them."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.subs: list[FabricSubscription] = []
        self.feeds: dict[tuple[str, str | None], CoreFeed] = {}
        self.decoded = DecodedRecently()  # overlapping feeds decode a message once
        self.wiring = Wiring(nc=client.nc, js=client.js, losses=client.losses, on_loop_thread=client.on_loop_thread,
                             call_on_loop=client.call_on_loop, backlog_full=client.backlog_full,
                             dead_letter=self._dead_letter)
        self.lags = EventLag(client.js)  # lag in events, counted incrementally per consumer
        self.raw_watch = RawTopicWatch(client.nc, client.js, lambda sub, subject: self.feed(sub, subject, True))

    def _dead_letter(self, sub: FabricSubscription, failed: list[tuple[Event, BaseException]], attempt: int) -> Ticket:
        c = self.client
        return dead_letter(c.batcher, c.source, lambda t: topic_subject(t, 0, c.identity),
                           lambda: c.call_on_loop(c.publisher.wake), sub, failed, attempt)

    async def feed(self, sub: FabricSubscription, subject: str, raw: bool = False) -> None:
        """Feed best-effort ``sub`` from the shared NATS subscription on ``subject`` (made if needed).

        ``raw``: ``subject`` is a foreign topic's own (every message one event)."""
        key = (subject, None) if sub.group is None else (subject, f"{sub.group}#{id(sub)}")
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = CoreFeed(self.wiring, subject, sub.group, key=key, raw=raw,
                                              decoded=self.decoded)
            self.decoded.enabled = len(self.feeds) > 1  # only feeds that may overlap share decoding
            feed.add(sub)
            try:
                await feed.start()
            except BaseException:
                del self.feeds[key]
                self.decoded.enabled = len(self.feeds) > 1
                raise
        else:
            feed.add(sub)
        sub.consumers.append(feed)

    async def topics_for(self, pat: Pattern, replay: bool = False) -> list[TopicConfig]:
        """The durable topics whose events ``pat`` may match (auto-created if allowed and none,
        but never to ``replay`` from: a typo would leave a durable stream behind)."""
        c = self.client
        found = await c.catalog.matching(pat)
        if found:
            return found
        literal = literal_head(pat)
        head = namespace_of(literal) if literal else pat.segments[0]  # users.bob.*: users.bob, not users
        if c.publisher.auto_topics is None or head in (ONE, MANY) or replay:
            raise NotFound(f"no topic stores events matching {pat.text!r}"
                           f"{' (nothing to replay)' if replay else ''}: create one with create_topic() "
                           f"or `evfabric topic create {head}`")
        cfg = replace(c.publisher.auto_topics, name=head)
        info = await create_topic(c.js, cfg, exist_ok=True, adopt=True)
        c.catalog.note(info.config)
        return [info.config]

    async def declared_raw(self, pat: Pattern) -> bool:
        """True when the topic covering ``pat``'s literal head is declared raw (cached lookups)."""
        head = literal_head(pat)
        if not head:
            return False
        cover = self.client.catalog.covering(head)
        if cover is None and not self.client.catalog.known(head):
            cover = await self.client.catalog.resolve(head)
        return cover is not None and cover.raw

    async def follow_raw(self, sub: FabricSubscription) -> None:
        """Best-effort ``sub`` also reads the foreign subjects, within its pattern, of the raw
        topics strictly below its literal head (of every raw topic when it starts with a
        wildcard), including those declared later: a best-effort ``lab.*`` reads raw topic
        ``lab.probe``'s devices, as a reliable one reads its stream (see
        :mod:`~evfabric.fabric.raw_watch`). Nothing under access control, which closes foreign
        subjects (docs/security.md)."""
        if self.client.identity == ANONYMOUS:
            await self.raw_watch.follow(sub, literal_head(sub.pattern))

    async def reliable(self, sub: FabricSubscription, start: Start, name: str | None, max_deliver: int,
                       ack_wait: float, redeliver_delay: float, dead_letter: bool, ordered: bool | None,
                       max_inflight: int, pull_batch: int, raw: bool | None = None) -> None:
        """Start the pull consumers of reliable ``sub`` (see ``AsyncClient.subscribe``); ``raw``:
        read only raw topics (True), only evfabric ones (False), each as declared (None)."""
        deliver_policy(start)  # a bad start is refused before any topic is looked up or made
        position = start_position(start)
        pat = sub.pattern
        wanted, _ = pattern_filter(pat)
        tag = Pattern(pat).text.replace(".", "_").replace("*", "S").replace("?", "Q")[:40]
        base = sub.group or name or f"evf_{self.client.nc._nuid.next().decode()}"
        topics = await self.topics_for(pat, replay=start not in (None, "new"))
        if raw is not None:
            topics = [t for t in topics if t.raw == raw]
            if not topics:
                kind = "raw" if raw else "evfabric (not raw)"
                raise ConfigError(f"raw={raw}: no {kind} topic stores events matching {pat.text!r}"
                                  + (" (declare one: create_topic(TopicConfig(name, raw=True)) or "
                                     "`evfabric topic create NAME --raw`)" if raw else ""))
        foreign = pattern_tokens(pat.text)[0]
        if position is not None and len(topics) > 1:
            raise ConfigError(f"start={str(position)!r}: a position is in one topic's stream, but {pat.text!r} "
                              f"reaches {len(topics)} topics ({', '.join(sorted(t.name for t in topics)[:3])}...)")
        for topic in topics:
            filters = [f for f in (intersect(s, foreign if topic.raw else wanted) for s in topic.subjects)
                       if f is not None]
            if position is not None:
                await check_position(self.client.js, topic.stream, filters, position.seq, position.index)
            keep_order = ordered if ordered is not None else (sub.group is not None and topic.partitions > 1)
            per_partition = sub.group is not None and keep_order
            parts = range(topic.partitions) if per_partition else [None]
            for p in parts:
                fs = filters if p is None else [_with_partition(f, p) for f in filters]
                cname = f"{base}_{tag}_{stream_name(topic.name)[4:]}" + ("" if p is None else f"_p{p}")
                cname = cname[:200]
                config = consumer_config(
                    cname, fs, start=start, ack_wait=ack_wait, max_deliver=max_deliver,
                    max_ack_pending=1 if keep_order else max_inflight,
                    inactive=None if (sub.group or name) else 300.0,
                )
                consumer = PullConsumer(self.wiring, sub, topic.stream, config, batch=pull_batch,
                                        max_inflight=1 if keep_order else max_inflight, max_deliver=max_deliver,
                                        redeliver_delay=redeliver_delay, dead_letter=dead_letter,
                                        shared=sub.group is not None, raw=topic.raw)
                if position is not None:
                    consumer.skip_before(position.seq, position.index)
                await consumer.start()
                sub.consumers.append(consumer)

    def forget(self, sub: FabricSubscription) -> None:
        """``sub`` ended locally: stop its broker side soon (from any thread)."""
        if sub in self.subs:
            self.subs.remove(sub)
        c = self.client
        if c.closed or c._loop.is_closed():
            return  # close() stops the consumers itself
        if c.on_loop_thread():
            c._loop.create_task(self.stop_consumers(sub))
        else:
            asyncio.run_coroutine_threadsafe(self.stop_consumers(sub), c._loop)

    async def stop_consumers(self, sub: FabricSubscription) -> None:
        """Stop what feeds ``sub`` (a shared feed only when no subscription is left on it)."""
        self.raw_watch.forget(sub)
        consumers, sub.consumers = sub.consumers, []
        for c in consumers:
            if isinstance(c, PullConsumer):
                # private anonymous consumers go; named ones and groups' stay for later
                await c.stop(delete=sub.group is None and c.config.inactive_threshold is not None)
                await self.lags.forget(c)
            elif isinstance(c, CoreFeed) and c.remove(sub) and self.feeds.get(c.key) is c:
                del self.feeds[c.key]
                self.decoded.enabled = len(self.feeds) > 1
                await c.stop()

    async def lag(self, sub: FabricSubscription) -> int:
        """Events ``sub``'s consumers have still to settle (0 for best effort): see
        :class:`~evfabric.fabric.positions.EventLag`."""
        total = 0
        for c in sub.consumers:
            if isinstance(c, PullConsumer):
                total += await self.lags.of(c)
        heard = sub.stats.listened - sub.stats.settled  # handled events of messages not yet settled
        return max(0, total - heard) if total else 0

    def on_reconnect(self) -> None:
        """The connection came back: pull requests in flight are gone."""
        for sub in self.subs:
            for c in sub.consumers:
                if isinstance(c, PullConsumer):
                    c.on_reconnect()


def literal_head(pat: Pattern) -> str:
    """``pat``'s segments before its first wildcard, as a topic name ('' if it starts with one)."""
    head: list[str] = []
    for seg in pat.segments:
        if seg in (ONE, MANY):
            break
        head.append(seg)
    return ".".join(head)


def _with_partition(filt: str, partition: int) -> str:
    """``filt`` (``evf.<publisher>.<partition>.<rest>``) restricted to one partition."""
    head, pub, _, rest = filt.split(".", 3)
    return f"{head}.{pub}.{partition}.{rest}"
