"""Fabric subscriptions: the local :class:`~evfabric.local.subscription.Subscription`, fed from the broker.

A fabric subscription *is* a local subscription (same ``add_listener`` / ``remove_listener`` /
``unsubscribe``), registered in the client's in-process :class:`~evfabric.local.EventService`,
which calls its listeners in the client's dispatch mode (``sync``: on ``process_events()``;
``threads``; ``asyncio``). Events received from the broker are handed to that service for this
subscription only (overlapping subscriptions do not see each other's copies).

For a ``reliable`` subscription the fabric must know when the listeners of a message's events
have returned, and whether one raised, to acknowledge the message (or have it redelivered): it
wraps each listener to note failures and appends a last, internal listener that settles the
event. Events already handled (by id) are dropped, so a redelivered batch only repeats the events
whose listeners failed. The CEL filter and exact pattern matching run before the hand-off.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from itertools import count, repeat
from operator import attrgetter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evfabric.core.event import RELIABLE, Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.local.subscription import Listener, Subscription

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["Delivery", "FabricSubscription", "SubscriptionStats"]

_event_id = attrgetter("id")


@dataclass
class SubscriptionStats:
    """Counters of one fabric subscription (events, not messages, unless said)."""

    received: int = 0  # events decoded from the broker for this subscription
    handed: int = 0  # events handed to local dispatch
    filtered: int = 0  # dropped by the exact pattern or the filter
    duplicates: int = 0  # redelivered events already handled (reliable)
    failed: int = 0  # events whose listener raised (each attempt)
    dead_lettered: int = 0  # events sent to the dead-letter topic
    dropped: int = 0  # best effort: dropped for a slow consumer or a full backlog
    garbage: int = 0  # messages that did not decode


class Delivery:
    """One broker message's events on their way through the listeners (reliable subscriptions).

    ``left`` is the number of events handed to the listeners; when that many are settled the
    consumer acknowledges the message, or asks for redelivery, or dead-letters the events that
    failed for good.
    """

    __slots__ = ("events", "left", "failed", "attempt", "ack", "ref", "_settled")

    def __init__(self, events: list[Event], attempt: int, ack: Callable[[Delivery], None], ref: Any = None) -> None:
        self.events = events
        self.ref = ref  # the consumer's handle on the message (its reply subject)
        self.left = 0
        self.failed: dict[str, tuple[Event, BaseException]] = {}
        self.attempt = attempt
        self.ack = ack
        # next() on an itertools.count is atomic under the GIL: settling threads need no lock
        self._settled = count(1)

    def settle_one(self) -> bool:
        """Count one event settled; True for the last one."""
        return next(self._settled) == self.left


class FabricSubscription(Subscription):
    """A subscription to a pattern on the broker: the local handle plus the broker's side.

    Extra attributes: ``delivery`` (``best_effort`` or ``reliable``), ``group`` (consumer group or
    None), ``stats`` (:class:`SubscriptionStats`). Reliable subscriptions also offer
    :meth:`lag` (events stored and not yet acknowledged by this subscription's consumers).
    """

    __slots__ = ("delivery", "group", "stats", "exact", "_client", "_user", "_flt", "_pending",
                 "_seen", "_seen_limit", "consumers")

    def __init__(self, client: AsyncClient, pattern: Pattern, filter: Filter | None, name: str,
                 delivery: str, group: str | None, exact: bool, dedupe: int = 200_000) -> None:
        reliable = delivery == RELIABLE
        # The local service applies the filter for best effort; reliable ones filter before the
        # hand-off so that every handed event reaches the settling listener.
        super().__init__(client.local, pattern, None if reliable else filter, name)
        self.delivery = delivery
        self.group = group
        self.stats = SubscriptionStats()
        self.exact = exact
        self._client = client
        self._user: tuple[Listener, ...] = ()
        self._flt = filter
        self._pending: dict[str, Delivery] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_limit = dedupe
        self.consumers: list[Any] = []
        self._rebuild()

    # -- listeners ----------------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The user's listeners, in call order."""
        return self._user

    @property
    def filter_expression(self) -> str | None:
        """The CEL filter's text, or None (announced in ``cca.subscription.added``)."""
        return self._flt.expression if self._flt is not None else None

    def add_listener(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for every matching event from now on; returns it (decorator use)."""
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        with self._lock:
            self._user = (*self._user, listener)
            self._rebuild()
        return listener

    def remove_listener(self, listener: Listener) -> bool:
        """Stop calling ``listener``; False if it was not registered."""
        with self._lock:
            if listener not in self._user:
                return False
            items = list(self._user)
            items.remove(listener)
            self._user = tuple(items)
            self._rebuild()
            return True

    def _rebuild(self) -> None:
        if self.delivery != RELIABLE:
            self._listeners = self._user
        else:
            self._listeners = (*(self._tracked(fn) for fn in self._user), self._settle)

    def unsubscribe(self) -> None:
        """End the subscription here and on the broker (a group's shared consumers stay)."""
        if self.active:
            super().unsubscribe()
            self._client._forget(self)

    # -- reliable bookkeeping (called from dispatch threads or the loop) --------------------------

    def _tracked(self, fn: Listener) -> Listener:
        def tracked(event: Event) -> Any:
            try:
                result = fn(event)
            except Exception as exc:
                self._failed(event, exc)
                raise
            if result is not None and inspect.isawaitable(result):  # isawaitable is slow; most return None
                return self._tracked_await(result, event)
            return result

        tracked.__qualname__ = getattr(fn, "__qualname__", repr(fn))
        return tracked

    async def _tracked_await(self, result: Awaitable[Any], event: Event) -> Any:
        try:
            return await result
        except Exception as exc:
            self._failed(event, exc)
            raise

    def _failed(self, event: Event, exc: BaseException) -> None:
        d = self._pending.get(event.id)
        if d is not None:
            d.failed.setdefault(event.id, (event, exc))
        self.stats.failed += 1

    def _settle(self, event: Event) -> None:
        eid = event.id
        d = self._pending.pop(eid, None)
        if d is None:
            return
        if not d.failed or eid not in d.failed:  # handled: remember the id (dedupe window)
            seen = self._seen
            seen[eid] = None
            if len(seen) > self._seen_limit:
                seen.popitem(last=False)
        if d.settle_one():
            d.ack(d)

    # -- hand-off (on the client's loop) ------------------------------------------------------------

    def admit(self, event: Event) -> bool:
        """True when ``event`` should reach the listeners: exact pattern, id not seen, filter."""
        return bool(self._admitted([event]))

    def _admitted(self, events: list[Event]) -> list[Event]:
        """The events that should reach the listeners (see :meth:`admit`); counts the others."""
        seen, pending = self._seen, self._pending
        flt = self._flt if self.delivery == RELIABLE else None
        if self.exact and flt is None:
            ids = list(map(_event_id, events))
            if seen.keys().isdisjoint(ids) and pending.keys().isdisjoint(ids):  # the usual case, in C
                return events
        match = None if self.exact else self.pattern.matches
        chosen = []
        filtered = duplicates = 0
        for ev in events:
            if match is not None and not match(ev.topic):
                filtered += 1
            elif ev.id in seen or ev.id in pending:
                duplicates += 1
            elif flt is not None and not flt(ev):
                filtered += 1
            else:
                chosen.append(ev)
        self.stats.filtered += filtered
        self.stats.duplicates += duplicates
        return chosen

    def hand_best_effort(self, events: list[Event]) -> None:
        """Queue received best-effort events for the listeners (one hand-off per message)."""
        self.stats.received += len(events)
        if not self.exact:
            match = self.pattern.matches
            chosen = [ev for ev in events if match(ev.topic)]
            self.stats.filtered += len(events) - len(chosen)
            events = chosen
        self.stats.handed += len(events)
        self._client.local.dispatcher.submit_many_to(events, self)

    def hand_reliable(self, delivery: Delivery) -> None:
        """Queue a message's events for the listeners; ``delivery.ack`` runs when all are settled."""
        self.stats.received += len(delivery.events)
        chosen = self._admitted(delivery.events)
        if not chosen:
            delivery.ack(delivery)
            return
        delivery.left = len(chosen)
        self._pending.update(zip(map(_event_id, chosen), repeat(delivery)))
        self.stats.handed += len(chosen)
        self._dispatch(chosen)

    def _dispatch(self, events: list[Event]) -> None:
        """Hand admitted reliable events to whatever calls the listeners: the local service here;
        subclasses (trigger executors) may run them their own way and then call :meth:`settle`."""
        self._client.local.dispatcher.submit_many_to(events, self)

    def settle(self, event: Event, error: BaseException | None = None) -> None:
        """Record that ``event`` was handled (``error`` None) or failed; acknowledges its message
        (or asks for redelivery, or dead-letters) once every event of the message is settled."""
        if error is not None:
            self._failed(event, error)
        self._settle(event)

    def lag(self, timeout: float = 5.0) -> int:
        """Events' messages stored on the broker and not yet acknowledged here (reliable only).

        Counts broker messages (batches), summed over this subscription's consumers. Blocks;
        from a coroutine on the client's loop use ``await client.lag(sub)``.
        """
        return self._client._call_blocking(self._client.lag(self), timeout)

    def __repr__(self) -> str:
        flt = f", filter={self._flt.expression!r}" if isinstance(self._flt, Filter) else ""
        grp = f" group={self.group!r}" if self.group else ""
        return f"<FabricSubscription {self.name} {self.pattern.text!r}{flt} {self.delivery}{grp} listeners={len(self._user)}>"
