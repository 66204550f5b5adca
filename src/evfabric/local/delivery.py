"""``Delivery``: how one queued event reaches listeners, and the accounting of what did not.

The service builds one :class:`Delivery` and hands it to the dispatcher it configures; a
dispatcher decides *when* and *on which thread* events are delivered, and calls only this public
interface:

* :meth:`deliver` (an event to every matching subscription), :meth:`deliver_to` (a batch to one
  subscription: replays, the fabric's hand-offs), :meth:`adeliver` (asyncio, awaiting listeners);
* :meth:`dropped` when its overflow policy drops an event;
* :attr:`losses` / :meth:`report` after a batch: one summary framework event for the drops and
  expiries noted since the last report.

Routing (the pattern index and its match cache), TTL expiry (on the injected
:class:`~evfabric.core.clocks.Clock`), filters and listener failures live here; the service keeps
publishing, subscribing and the framework events.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from evfabric.core.clocks import Clock
from evfabric.core.event import Body, Event
from evfabric.core.index import PatternIndex
from evfabric.local import framework_events as cca
from evfabric.local.overflow import Overflow
from evfabric.local.subscription import Subscription

__all__ = ["Delivery"]

log = logging.getLogger("evfabric.local")

Emit = Callable[[str, Body], None]


class Delivery:
    """Delivers events to the subscriptions of ``index``; counts failures, drops and expiries.

    :param emit: publishes a framework event (``cca.*``), e.g. the service's ``emit``.
    """

    def __init__(self, index: PatternIndex[Subscription], clock: Clock, emit: Emit) -> None:
        self.match = index.match
        self.cache = index.cache  # read directly on the hot path (the index changes it in place)
        self.clock = clock
        self._emit = emit
        self.listener_errors = 0
        self.expired = 0
        self.dropped = 0
        self.losses = False  # True when drops or expiries wait to be reported
        self._drops: Counter[str] = Counter()
        self._expired_topics: Counter[str] = Counter()
        self._policy = ""
        self._lock = threading.Lock()

    # -- delivery ---------------------------------------------------------------------------

    def deliver(self, event: Event) -> int:
        """Call the listeners of every subscription matching ``event``; return the calls made.

        An event whose ``ttl`` has run out is not delivered (counted, reported).
        """
        # The listener loop is written out here, in deliver_to and in SyncDispatcher's flush
        # (not a shared helper): on the hot path a Python call per event and subscription
        # costs ~10 % of delivery.
        subs = self.cache.get(event.topic)
        if subs is None:
            subs = self.match(event.topic)
        if not subs:
            return 0
        if event.ttl is not None and event.expired(self.clock.time()):
            self.note_expired(event)
            return 0
        calls = 0
        for sub in subs:
            flt = sub.filter
            if flt is not None and not flt(event):
                continue
            for listener in sub._listeners:
                try:
                    listener(event)
                except Exception as exc:
                    self.listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    def deliver_to(self, events: Sequence[Event], sub: Subscription) -> int:
        """Deliver ``events`` (in order) to ``sub`` only; stops when it is unsubscribed.

        The subscription's state is read per event, so unsubscribing or removing a listener takes
        effect within a batch as it would between single events.
        """
        calls = 0
        flt = sub.filter
        for event in events:
            if not sub.active:
                break
            if flt is not None and not flt(event):
                continue
            for listener in sub._listeners:
                try:
                    listener(event)
                except Exception as exc:
                    self.listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    async def adeliver(self, event: Event, only: Subscription | None) -> int:
        """Deliver one event on an asyncio loop (to ``only``, or to every match), awaiting
        awaitable results in order."""
        if only is None:
            subs = self.match(event.topic)
            if subs and event.ttl is not None and event.expired(self.clock.time()):
                self.note_expired(event)
                return 0
        else:
            subs = (only,) if only.active else ()
        calls = 0
        for sub in subs:
            if sub.filter is not None and not sub.filter(event):
                continue
            for listener in sub._listeners:
                try:
                    result = listener(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self.listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    # -- accounting ---------------------------------------------------------------------------

    def listener_failed(self, sub: Subscription, listener: Callable[..., Any], event: Event, exc: Exception) -> None:
        """Count, log and publish (``cca.listener.failed``) a listener that raised."""
        self.listener_errors += 1
        name = getattr(listener, "__qualname__", repr(listener))
        log.error("listener %s of %s failed on %s %s: %r", name, sub.name, event.topic, event.id, exc)
        if event.topic != cca.LISTENER_FAILED:  # a failing failure-listener must not loop
            self._emit(
                cca.LISTENER_FAILED,
                {
                    "subscription": sub.name,
                    "listener": name,
                    "event_id": event.id,
                    "topic": event.topic,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )

    def dropped_event(self, event: Event, policy: Overflow) -> None:
        """Note that the overflow ``policy`` dropped ``event`` (reported by :meth:`report`)."""
        with self._lock:
            self._drops[event.topic] += 1
            self.dropped += 1
            self._policy = policy.value
            self.losses = True

    def note_expired(self, event: Event) -> None:
        """Note that ``event`` outlived its ttl before delivery."""
        with self._lock:
            self.expired += 1
            self._expired_topics[event.topic] += 1
            self.losses = True

    def report(self) -> None:
        """Publish one summary event each for the drops and the expiries noted since the last report."""
        with self._lock:
            if not self.losses:
                return
            drops, self._drops = self._drops, Counter()
            expired, self._expired_topics = self._expired_topics, Counter()
            self.losses = False
        if drops:
            self._emit(cca.EVENTS_DROPPED, {"count": sum(drops.values()), "policy": self._policy, "topics": dict(drops)})
        if expired:
            self._emit(cca.EVENTS_EXPIRED, {"count": sum(expired.values()), "topics": dict(expired)})
