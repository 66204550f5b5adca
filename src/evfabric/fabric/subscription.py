"""Fabric subscriptions: the local :class:`~evfabric.local.subscription.Subscription`, fed from the broker.

A fabric subscription *is* a local subscription (same ``add_listener`` / ``remove_listener`` /
``unsubscribe``), registered in the client's in-process :class:`~evfabric.local.EventService`,
which calls its listeners in the client's dispatch mode (``sync``: on ``process_events()``;
``threads``; ``asyncio``). Events received from the broker are handed to that service for this
subscription only (overlapping subscriptions do not see each other's copies).

Consumers give each message's events to the subscription's ``handler``
(:class:`~evfabric.fabric.handler.EventHandler`): by default the subscription itself, which
queues them for its listeners and, for a ``reliable`` subscription, settles each event once its
last listener returned (failed if any listener raised). Acknowledgement is not a listener:
``process_events()`` and ``stats.delivered`` count the user's listener calls only, and a
failure is counted once (``stats.failed``, per event and attempt). Another handler (a trigger
runner's) takes the events instead: ``FabricSubscription(..., handler=mine)``.

The consumer matches events against the exact pattern (and, for reliable, the CEL filter) with
:meth:`FabricSubscription.select` before the hand-off; duplicates are dropped per message by the
consumer (see :mod:`evfabric.fabric.pull`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evfabric.core.event import RELIABLE, Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.fabric.handler import EventHandler, Settle
from evfabric.local.subscription import Listener, Subscription

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient

__all__ = ["FabricSubscription", "SubscriptionStats"]


@dataclass
class SubscriptionStats:
    """Counters of one fabric subscription (events, not messages, unless said)."""

    received: int = 0  # events decoded from the broker for this subscription
    handed: int = 0  # events handed to the handler (the listeners)
    filtered: int = 0  # dropped by the exact pattern or the filter
    duplicates: int = 0  # messages delivered again and dropped as a whole (per stream sequence)
    skipped: int = 0  # events of a redelivered message handled in an earlier attempt (not handed again)
    failed: int = 0  # events whose handling failed (each attempt counted once)
    dead_lettered: int = 0  # events sent to the dead-letter topic
    dropped: int = 0  # best effort: events lost (sequence gaps, a full backlog)
    garbage: int = 0  # messages that did not decode
    listened: int = 0  # reliable: events whose listeners all returned (or raised)
    settled: int = 0  # reliable: events of hand-offs settled after their listeners


class FabricSubscription(Subscription):
    """A subscription to a pattern on the broker: the local handle plus the broker's side.

    Extra attributes: ``delivery`` (``best_effort`` or ``reliable``), ``group`` (consumer group or
    None), ``stats`` (:class:`SubscriptionStats`), ``handler`` (who takes received events).
    Reliable subscriptions also offer :meth:`lag`.
    """

    __slots__ = ("_client", "_errors", "_flt", "_pending", "_user", "consumers", "delivery", "exact", "group",
                 "handler", "stats")

    def __init__(self, client: AsyncClient, pattern: Pattern, filter: Filter | None, name: str,
                 delivery: str, group: str | None, exact: bool, handler: EventHandler | None = None) -> None:
        # The subscription filters before the hand-off (the local service applies none): every
        # handed reliable event gets settled, and ``stats.filtered`` counts for both deliveries.
        super().__init__(client.local, pattern, None, name)
        self.delivery = delivery
        self.group = group
        self.stats = SubscriptionStats()
        self.exact = exact
        self.handler: EventHandler = handler if handler is not None else self
        self._client = client
        self._user: tuple[Listener, ...] = ()
        self._flt = filter
        # id(last event of a hand-off) -> (settle, events): reliable hand-offs not yet through the
        # listeners (a message's events share one topic, so the local service delivers them in
        # order, in one go: the last event's last listener returning means all are done)
        self._pending: dict[int, tuple[Settle, list[Event]]] = {}
        self._errors: dict[int, BaseException] = {}  # id(event) -> first error, until settled
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

    @property
    def filter_in_use(self) -> Filter | None:
        """The CEL filter, applied here before the hand-off (errors reported by the service)."""
        return self._flt

    def add_listener(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for every matching event from now on; returns it (decorator use)."""
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        with self._lock:
            self._user = (*self._without_early_inbox(self._user, listener), listener)
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
        user = self._user
        if self.delivery != RELIABLE:
            self._listeners = user
        elif not user:
            # events handed while the last listener was being removed still get settled
            self._listeners = (self._settle_unheard,)
        else:
            self._listeners = (*(self._tracked(fn, False) for fn in user[:-1]), self._tracked(user[-1], True))

    def unsubscribe(self) -> None:
        """End the subscription here and on the broker (a group's shared consumers stay)."""
        if self.active:
            super().unsubscribe()
            self._client._forget(self)

    # -- selection (on the client's loop, by the consumers) ---------------------------------------

    def select(self, events: list[Event]) -> list[Event]:
        """The events that should reach the handler: exact pattern, and the filter."""
        flt = self._flt
        if self.exact and flt is None:
            return events
        match = None if self.exact else self.pattern.matches
        chosen = [ev for ev in events if (match is None or match(ev.topic)) and (flt is None or flt(ev))]
        self.stats.filtered += len(events) - len(chosen)
        return chosen

    def admit(self, event: Event) -> bool:
        """True when ``event`` matches the subscription (exact pattern and filter)."""
        return bool(self.select([event]))

    # -- the default handler: the listeners, through the local service -----------------------------

    def handle(self, events: list[Event], settle: Settle) -> None:
        """Queue ``events`` for the listeners; for reliable, settle each after its last listener."""
        if self.delivery == RELIABLE:
            if not self._user:  # nobody listens: handled
                for ev in events:
                    settle(ev)
                return
            self._pending[id(events[-1])] = (settle, events)
        self._client.local.dispatcher.submit_many_to(events, self)

    def _tracked(self, fn: Listener, last: bool) -> Listener:
        pending = self._pending

        def tracked(event: Event) -> Any:
            try:
                result = fn(event)
            except Exception as exc:
                self._note_failure(event, exc)
                if last:
                    self.stats.listened += 1
                    if id(event) in pending:
                        self._settle(event)
                raise
            if result is not None and inspect.isawaitable(result):  # isawaitable is slow; most return None
                return self._tracked_await(result, event, last)
            if last:
                self.stats.listened += 1  # lag in events: what is heard of a message not yet settled
                if id(event) in pending:
                    self._settle(event)
            return result

        tracked.__qualname__ = getattr(fn, "__qualname__", repr(fn))
        return tracked

    async def _tracked_await(self, result: Awaitable[Any], event: Event, last: bool) -> Any:
        try:
            return await result
        except Exception as exc:
            self._note_failure(event, exc)
            raise
        finally:
            if last:
                self.stats.listened += 1
                if id(event) in self._pending:
                    self._settle(event)

    def _note_failure(self, event: Event, exc: BaseException) -> None:
        self._errors.setdefault(id(event), exc)

    def _settle(self, last: Event, heard: bool = True) -> None:
        """The hand-off ending with ``last`` went through the listeners: settle its events."""
        entry = self._pending.pop(id(last), None)
        if entry is None:
            return
        settle, events = entry
        if heard:
            self.stats.settled += len(events)
        errors = self._errors
        if not errors:
            settle.many(events)
            return
        for ev in events:
            settle(ev, errors.pop(id(ev), None))

    def _settle_unheard(self, event: Event) -> None:
        if id(event) in self._pending:
            self._settle(event, heard=False)

    def lag(self, timeout: float = 5.0) -> int:
        """Events stored on the broker that this subscription has still to handle (reliable only):
        those of the messages not yet acknowledged, less the events already handled (docs/fabric.md).
        Blocks; from a coroutine on the client's loop use ``await client.lag(sub)``.
        """
        return self._client._call_blocking(self._client.lag(self), timeout)

    def __repr__(self) -> str:
        flt = f", filter={self._flt.expression!r}" if isinstance(self._flt, Filter) else ""
        grp = f" group={self.group!r}" if self.group else ""
        return f"<FabricSubscription {self.name} {self.pattern.text!r}{flt} {self.delivery}{grp} listeners={len(self._user)}>"
