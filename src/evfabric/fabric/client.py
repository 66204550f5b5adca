"""The synchronous fabric client: ``client = evfabric.connect(url)``, no asyncio needed.

    import evfabric
    client = evfabric.connect("nats://127.0.0.1:4222", source="worker7")
    sub = client.subscribe("jobs.*.status", delivery="reliable", group="coordinators")
    sub.add_listener(lambda ev: print(ev.topic, ev.body))
    client.publish("jobs.42.status", {"state": "done"}, delivery="reliable")  # returns once stored
    client.close()

nats-py runs on a private event-loop thread; listeners run on the client's dispatcher threads
(``mode="threads"``, default) or in ``process_events()`` (``mode="sync"``). Each method is the
blocking twin of :class:`~evfabric.fabric.aio.AsyncClient`'s; see there for the semantics.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any, Coroutine, TypeVar

from evfabric.core.errors import ConfigError, QueueFull
from evfabric.core.event import RELIABLE, Body, Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.fabric.aio import DEFAULT_URL, AsyncClient, FabricStats, connect_async
from evfabric.fabric.batching import Ticket
from evfabric.fabric.delivery import Rule
from evfabric.fabric.replay import Start
from evfabric.fabric.streams import TopicInfo
from evfabric.fabric.subscription import FabricSubscription

__all__ = ["Client", "connect"]

T = TypeVar("T")


class Client:
    """A blocking client of the fabric. Create it with :func:`connect`. Thread-safe."""

    def __init__(self, url: str | list[str] = DEFAULT_URL, *, mode: str = "threads", **options: Any) -> None:
        if mode not in ("threads", "sync"):
            raise ConfigError(f"the synchronous client's mode is 'threads' or 'sync', got {mode!r}")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="evfabric-loop", daemon=True)
        self._thread.start()
        try:
            self._core: AsyncClient = self._run(connect_async(url, mode=mode, **options), None)
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    @property
    def aio(self) -> AsyncClient:
        """The asyncio client underneath (its coroutines run on this client's loop thread)."""
        return self._core

    @property
    def source(self) -> str:
        """The component id stamped on published events."""
        return self._core.source

    @property
    def stats(self) -> FabricStats:
        """The client's counters (published, sent, stored, dropped, garbage, reconnects...)."""
        return self._core.stats

    @property
    def is_connected(self) -> bool:
        """True while the connection to the broker is up (it comes back by itself)."""
        return self._core.is_connected

    # -- publishing ------------------------------------------------------------------------------

    def _offer(self, event: Event, delivery: str | None) -> Ticket:
        core = self._core
        subject, mode = core.route(event, delivery)
        while True:
            ticket = core.offer(event, subject, mode) or core.full(event, mode)
            if ticket is not None:
                return ticket
            if core.on_loop_thread():
                raise QueueFull("the batcher is full and this thread runs the client's loop: it cannot wait")
            core.batcher.wait_for_space(1.0)

    def publish(self, topic: str, body: Body | None = None, *, delivery: str | None = None,
                wait: bool | None = None, timeout: float | None = None, **header: Any) -> Event:
        """Publish an event on ``topic`` and return it.

        Best effort returns once the event is accepted (batched, sent at once if the line is idle);
        reliable returns once the broker has stored it (``wait=False``: at once; see :meth:`flush`).
        Raises bad-input errors, :class:`PublishTimeout` or :class:`PublishRejected`.
        """
        event = self._core.build(topic, body, header)
        self.publish_event(event, delivery=delivery, wait=wait, timeout=timeout)
        return event

    def publish_event(self, event: Event, *, delivery: str | None = None, wait: bool | None = None,
                      timeout: float | None = None) -> Ticket:
        """Publish an already-built event unchanged (relays); see :meth:`publish`."""
        ticket = self._offer(event, delivery)
        if wait or (wait is None and event.delivery == RELIABLE):
            ticket.wait(timeout if timeout is not None else self._core.publish_timeout)
        return ticket

    def submit(self, topic: str, body: Body | None = None, *, delivery: str | None = None, **header: Any) -> Ticket:
        """Publish without waiting for the broker; ``ticket.wait()`` blocks until sent/stored."""
        return self._offer(self._core.build(topic, body, header), delivery)

    def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: str | None = None,
                     **header: Any) -> Ticket:
        """One event per body on ``topic``, same header: the fast path. Does not wait (see :meth:`flush`)."""
        core = self._core
        events = core.build_many(topic, bodies, header)
        if not events:
            done = Ticket()
            done._seal(0)
            return done
        subject, mode = core.route(events[0], delivery)
        for ev in events[1:]:
            ev.delivery = events[0].delivery
        step = max(1, core.batcher.max_pending // 2)
        ticket: Ticket | None = None
        for i in range(0, len(events), step):
            chunk = events[i : i + step]
            while (ticket := core.offer_many(chunk, subject, mode)) is None:
                if core.overflow == "raise":
                    raise QueueFull(f"{core.batcher.max_pending} events await the broker")
                core.batcher.wait_for_space(1.0)
        assert ticket is not None
        return ticket

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event accepted so far is sent (best effort) or stored (reliable)."""
        self._run(self._core.flush(timeout), None)

    def set_delivery(self, pattern: str, mode: str) -> None:
        """Topics matching ``pattern`` default to ``mode``."""
        self._core.set_delivery(pattern, mode)

    def add_delivery_rule(self, predicate: Rule, mode: str) -> None:
        """Events for which ``predicate`` (CEL text or callable) holds use ``mode``."""
        self._core.add_delivery_rule(predicate, mode)

    # -- subscribing -------------------------------------------------------------------------------

    def subscribe(self, pattern: str | Pattern, filter: str | Filter | None = None, *, listener: Any = None,
                  delivery: str | None = None, group: str | None = None, start: Start = None,
                  replay: bool = False, name: str | None = None, **options: Any) -> FabricSubscription:
        """Subscribe to ``pattern`` on the broker; returns once the broker knows (see AsyncClient.subscribe)."""
        return self._run(self._core.subscribe(pattern, filter, listener=listener, delivery=delivery, group=group,
                                              start=start, replay=replay, name=name, **options))

    @property
    def subscriptions(self) -> list[FabricSubscription]:
        """The active fabric subscriptions."""
        return self._core.subscriptions

    def process_events(self, timeout: float | None = None) -> int:
        """``sync`` mode: deliver received events in this thread; ``threads``: wait for delivery."""
        return self._core.process_events(timeout)

    def lag(self, sub: FabricSubscription) -> int:
        """Broker messages not yet acknowledged by ``sub`` (reliable subscriptions)."""
        return self._run(self._core.lag(sub))

    # -- topics ------------------------------------------------------------------------------------

    def create_topic(self, name: str, *, exist_ok: bool = False, **settings: Any) -> TopicInfo:
        """Create durable topic ``name``: ``max_age``, ``max_bytes``, ``max_msgs``, ``replicas``,
        ``partitions``, ``storage``, ``description``."""
        return self._run(self._core.create_topic(name, exist_ok=exist_ok, **settings))

    def list_topics(self) -> list[TopicInfo]:
        """Every durable topic on the broker."""
        return self._run(self._core.list_topics())

    def describe_topic(self, name: str) -> TopicInfo:
        """Settings and state of topic ``name``."""
        return self._run(self._core.describe_topic(name))

    def update_topic(self, name: str, **changes: Any) -> TopicInfo:
        """Change settings of topic ``name``."""
        return self._run(self._core.update_topic(name, **changes))

    def delete_topic(self, name: str) -> None:
        """Delete topic ``name`` and its stored events."""
        self._run(self._core.delete_topic(name))

    # -- closing -----------------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Flush, stop consumers, disconnect and stop the loop thread. Idempotent."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._core.close(timeout), timeout + 10)
        finally:
            self._stop_loop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<evfabric.Client {self.source!r} {state} subscriptions={len(self.subscriptions)}>"


def connect(url: str | list[str] = DEFAULT_URL, **options: Any) -> Client:
    """Connect to the fabric at ``url`` for use from ordinary (non-asyncio) code.

    Options: those of :func:`~evfabric.fabric.aio.connect_async` (``source``, ``delivery``,
    ``max_batch``, ``max_pending``, ``overflow``, ``linger``, ``auto_topics``...) and ``mode``
    (``threads`` or ``sync``). Raises :class:`BrokerUnavailable` when no server answers.
    """
    return Client(url, **options)
