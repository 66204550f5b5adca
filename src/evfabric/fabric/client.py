"""The synchronous fabric client: ``client = evfabric.connect(url)``, no asyncio needed.

    import evfabric
    client = evfabric.connect("nats://127.0.0.1:4222", source="worker7")
    sub = client.subscribe("jobs.*.status", delivery="reliable", group="coordinators")
    sub.add_listener(lambda ev: print(ev.topic, ev.body))
    client.publish("jobs.42.status", {"state": "done"}, delivery="reliable")  # returns once stored
    client.close()

The clients of a process share one event-loop thread for their connections
(:mod:`evfabric.fabric.shared_loop`) and, in ``mode="threads"`` (default), one pool of listener
threads that grows while listeners block (:mod:`evfabric.fabric.dispatch_pool`);
``mode="threads", workers=N`` gives a client a private pool of N (up to 4N) threads instead;
``mode="sync"`` calls listeners in ``process_events()``. No listener runs on the loop thread, so
a listener that blocks does not stall any client's I/O. Each method is the blocking twin of
:class:`~evfabric.fabric.aio.AsyncClient`'s; see there for the semantics.

After ``os.fork()`` the clients the child inherited are closed in the child (their connections
are the parent's and stay the parent's): ``connect()`` again in the child.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from evfabric.core.errors import ConfigError, QueueFull, ServiceClosed
from evfabric.core.event import RELIABLE, Body, Delivery, Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.fabric.aio import DEFAULT_URL, AsyncClient, connect_async
from evfabric.fabric.batching import Ticket
from evfabric.fabric.delivery import Rule
from evfabric.fabric.dispatch_pool import pooled
from evfabric.fabric.replay import Start
from evfabric.fabric.shared_loop import SHARED_LOOP, at_fork_in_child
from evfabric.fabric.stats import FabricStats
from evfabric.fabric.streams import TopicInfo
from evfabric.fabric.subscription import FabricSubscription
from evfabric.local.dispatch import ThreadPoolDispatcher
from evfabric.local.overflow import Overflow
from evfabric.local.service import DispatcherFactory

__all__ = ["Client", "connect"]

T = TypeVar("T")
log = logging.getLogger("evfabric.fabric")
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()
AT_EXIT_TIMEOUT = 10.0  # seconds a client still open at interpreter exit may take to flush


def _close_at_exit() -> None:
    """Close (and so flush) every client a script left open: its last events still leave."""
    for client in list(_open_clients):
        try:
            client.close(AT_EXIT_TIMEOUT)
        except Exception as exc:
            log.warning("evfabric: a client left open lost events at exit: %s", exc)


atexit.register(_close_at_exit)


def _forget_parent_clients() -> None:
    """In a forked child: the inherited clients are closed here (their sockets are the parent's)."""
    for client in list(_open_clients):
        client._core._closed = True  # publish/subscribe raise ServiceClosed; nothing touches the socket
    _open_clients.clear()


at_fork_in_child(_forget_parent_clients)


def _dispatcher(mode: str, workers: int | None) -> DispatcherFactory | None:
    """The local service's dispatcher: the shared pool, a private pool (``workers``) or sync."""
    if workers is not None:
        if mode != "threads":
            raise ConfigError(f"workers= is for mode='threads' (a private pool of listener threads), got mode={mode!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(f"workers must be a positive int, got {workers!r}")

        def private(delivery: Any, capacity: int, overflow: Overflow) -> ThreadPoolDispatcher:
            return ThreadPoolDispatcher(delivery, capacity, overflow, workers, 4 * workers, "shared")

        return private
    return pooled if mode == "threads" else None


class Client:
    """A blocking client of the fabric. Create it with :func:`connect`. Thread-safe."""

    def __init__(self, url: str | list[str] = DEFAULT_URL, *, mode: str = "threads", workers: int | None = None,
                 **options: Any) -> None:
        if mode not in ("threads", "sync"):
            raise ConfigError(f"the synchronous client's mode is 'threads' or 'sync', got {mode!r}")
        dispatcher = _dispatcher(mode, workers)
        self._pid = os.getpid()
        self._closed = False
        self._closing = threading.Lock()  # two threads closing at once release the shared loop once
        self._loop = SHARED_LOOP.acquire()
        try:
            self._core: AsyncClient = self._run(connect_async(url, mode=mode, dispatcher=dispatcher, **options), None)
        except BaseException:
            SHARED_LOOP.release(self._loop)
            raise
        _open_clients.add(self)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        if self._pid != os.getpid():
            coro.close()
            raise ServiceClosed("this client was connected by the parent process: connect() again in the child")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def aio(self) -> AsyncClient:
        """The asyncio client underneath (its coroutines run on the process's shared loop thread)."""
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
        out = self._core.outbox
        subject, chosen = out.route(event, delivery)
        while True:
            ticket = out.offer(event, subject, chosen) or out.full(event, chosen)
            if ticket is not None:
                return ticket
            if self._core.on_loop_thread():
                raise QueueFull("the batcher is full and this thread runs the client's loop: it cannot wait")
            out.batcher.wait_for_space(1.0)

    def publish(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None,
                wait: bool | None = None, timeout: float | None = None, **header: Any) -> Event:
        """Publish an event on ``topic`` and return it.

        Best effort returns once the event is accepted (batched, sent at once if the line is idle);
        reliable returns once the broker has stored it (``wait=False``: at once; see :meth:`flush`).
        Raises bad-input errors, :class:`PublishTimeout` or :class:`PublishRejected`.
        """
        event = self._core.build(topic, body, header)
        self.publish_event(event, delivery=delivery, wait=wait, timeout=timeout)
        return event

    def publish_event(self, event: Event, *, delivery: Delivery | None = None, wait: bool | None = None,
                      timeout: float | None = None) -> Ticket:
        """Publish an already-built event unchanged (relays); see :meth:`publish`."""
        ticket = self._offer(event, delivery)
        if wait or (wait is None and event.delivery == RELIABLE):
            ticket.wait(timeout if timeout is not None else self._core.publish_timeout)
        return ticket

    def submit(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None, **header: Any) -> Ticket:
        """Publish without waiting for the broker; ``ticket.wait()`` blocks until sent/stored."""
        return self._offer(self._core.build(topic, body, header), delivery)

    def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: Delivery | None = None,
                     **header: Any) -> Ticket:
        """One event per body on ``topic``, same header: the fast path. Does not wait (see :meth:`flush`)."""
        core = self._core
        events = core.build_many(topic, bodies, header)
        if not events:
            done = Ticket()
            done._seal(0)
            return done
        out = core.outbox
        subject, chosen = out.route(events[0], delivery)
        for ev in events[1:]:
            ev.delivery = events[0].delivery
        step = max(1, out.batcher.max_pending // 2)
        ticket: Ticket | None = None
        for i in range(0, len(events), step):
            chunk = events[i : i + step]
            while (ticket := out.offer_many(chunk, subject, chosen)) is None:
                if out.overflow == "raise":
                    raise QueueFull(f"{out.batcher.max_pending} events await the broker")
                out.batcher.wait_for_space(1.0)
        assert ticket is not None
        return ticket

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event accepted so far is sent (best effort) or stored (reliable)."""
        self._run(self._core.flush(timeout), None)

    def request(self, topic: str, body: Body | None = None, *, timeout: float = 5.0, **header: Any) -> Event:
        """Publish a request on ``topic``; return the first reply or raise :class:`RequestTimeout`
        (see :mod:`evfabric.fabric.request`)."""
        return self._run(self._core.request(topic, body, timeout=timeout, **header), timeout + 30)

    def reply(self, request_event: Event, body: Body | None = None, **header: Any) -> Event:
        """Answer a request event (one with a ``replyto`` header), e.g. from a listener."""
        return self._run(self._core.reply(request_event, body, **header))

    def set_delivery(self, pattern: str, delivery: str) -> None:
        """Topics matching ``pattern`` default to ``delivery`` (``best_effort`` or ``reliable``)."""
        self._core.set_delivery(pattern, delivery)

    def add_delivery_rule(self, predicate: Rule, delivery: str) -> None:
        """Events for which ``predicate`` (CEL text or callable) holds use ``delivery``."""
        self._core.add_delivery_rule(predicate, delivery)

    # -- subscribing -------------------------------------------------------------------------------

    def subscribe(self, pattern: str | Pattern, filter: str | Filter | None = None, *, listener: Any = None,
                  delivery: Delivery | None = None, group: str | None = None, start: Start = None,
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
        """Create durable topic ``name``: ``max_age``, ``max_bytes``, ``max_msgs``, ``max_events``,
        ``replicas``, ``partitions``, ``storage``, ``description``, ``raw`` (see
        :class:`~evfabric.fabric.streams.TopicConfig`)."""
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
        """Flush, stop consumers, disconnect; the last client of the process stops the loop thread.
        Idempotent; raises (once closed) the flush's error when accepted events were not all sent."""
        _open_clients.discard(self)
        if self._pid != os.getpid():  # inherited over fork: the connection is the parent's
            self._closed = True
            return
        with self._closing:
            if self._closed:
                return
            self._closed = True
        try:
            self._run(self._core.close(timeout), timeout + 10)
        finally:
            SHARED_LOOP.release(self._loop)

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
    ``max_batch``, ``max_pending``, ``overflow``, ``linger``, ``auto_topics``...), ``mode``
    (``threads`` or ``sync``) and ``workers`` (``threads`` only: a private pool of listener
    threads instead of the process's shared one). Raises :class:`BrokerUnavailable` when no
    server answers.
    """
    return Client(url, **options)
