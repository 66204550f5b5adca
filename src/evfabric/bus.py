"""``Bus``: the one interface of every evfabric event service, in-process or over a broker.

:class:`~evfabric.local.service.EventService`, the fabric's :class:`~evfabric.fabric.client.Client`
and the in-memory broker's clients (:class:`evfabric.testing.MemoryBroker`) all implement
:class:`Bus`; the asyncio client (:class:`~evfabric.fabric.aio.AsyncClient`) implements
:class:`AsyncBus`. Code written against them (transports, runners, users' components) runs on
any of them, and its tests run on the in-memory broker::

    def relay(bus: Bus) -> Subscription:
        return bus.subscribe("sensors.*", listener=lambda ev: bus.publish("relayed.x", ev.body))

Every ``subscribe`` returns a :class:`~evfabric.local.subscription.Subscription` (the fabric's
subscriptions are a subclass): ``add_listener``, ``remove_listener``, ``unsubscribe``, ``pattern``,
``filter``, ``name``, ``active``.

The protocols are structural (``typing.Protocol``): implementations do not inherit from them.
They name the part the implementations share; each may take more keywords (a fabric client's
``delivery=``, ``group=``, ``start=``...).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any, Literal, Protocol, runtime_checkable

from evfabric.core.event import Body, Delivery, Event
from evfabric.core.filters import Filter
from evfabric.core.position import Position
from evfabric.core.topics import Pattern
from evfabric.local.subscription import Listener, Subscription

#: Where a reliable subscription starts: ``"new"`` (default), ``"earliest"``, ``"last"``, a stream
#: sequence, an event's position (``event.position``; the fabric also takes its text
#: ``"<seq>:<index>"``), a time (seconds since the epoch) or a timezone-aware datetime.
Start = Literal["new", "earliest", "last"] | int | Position | float | _dt.datetime | None

__all__ = ["AsyncBus", "Bus", "Delivery", "Listener", "Start", "Subscription"]



@runtime_checkable
class Bus(Protocol):
    """A blocking event service: publish, subscribe, deliver, close."""

    @property
    def source(self) -> str:
        """The component id stamped on the events this bus publishes."""
        ...

    def publish(self, topic: str, body: Body | None = None, **header: Any) -> Event:
        """Validate, stamp and send one event on ``topic``; return it.

        ``header`` may set ``type``, ``ttl``, ``key``, ``delivery`` and extra attributes.
        """
        ...

    def publish_many(self, topic: str, bodies: Iterable[Body], **header: Any) -> object:
        """One event per body on ``topic``, one header for all: the fast path.

        What it returns differs (the events in process, a ticket over a broker).
        """
        ...

    def subscribe(
        self,
        pattern: str | Pattern,
        filter: str | Filter | None = None,
        *,
        listener: Listener | None = None,
        replay: bool = False,
        name: str | None = None,
    ) -> Subscription:
        """Call the subscription's listeners for events on topics matching ``pattern`` (CCA
        ``*``/``?`` wildcards) that the CEL ``filter`` accepts."""
        ...

    def process_events(self, timeout: float | None = None) -> int:
        """Deliver what has arrived (sync mode) or wait for delivery; return listener calls made."""
        ...

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event accepted so far is handed on: sent or stored by a broker,
        delivered in process."""
        ...

    def close(self) -> None:
        """Deliver or send what is pending, then stop."""
        ...


@runtime_checkable
class AsyncBus(Protocol):
    """The asyncio variant of :class:`Bus` (``evfabric.connect_async``)."""

    @property
    def source(self) -> str:
        """The component id stamped on the events this bus publishes."""
        ...

    async def publish(self, topic: str, body: Body | None = None, **header: Any) -> Event:
        """As :meth:`Bus.publish`."""
        ...

    async def publish_many(self, topic: str, bodies: Iterable[Body], **header: Any) -> object:
        """As :meth:`Bus.publish_many`."""
        ...

    async def subscribe(
        self,
        pattern: str | Pattern,
        filter: str | Filter | None = None,
        *,
        listener: Listener | None = None,
        replay: bool = False,
        name: str | None = None,
    ) -> Subscription:
        """As :meth:`Bus.subscribe`; returns once the broker knows."""
        ...

    def process_events(self, timeout: float | None = None) -> int:
        """As :meth:`Bus.process_events`."""
        ...

    async def flush(self, timeout: float | None = None) -> None:
        """As :meth:`Bus.flush`."""
        ...

    async def close(self) -> None:
        """As :meth:`Bus.close`."""
        ...
