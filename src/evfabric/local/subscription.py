"""Subscription handles (CCA 2.3): a pattern, an optional filter, and the listeners to call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from evfabric.core.errors import ReceiveTimeout
from evfabric.core.event import Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern

if TYPE_CHECKING:
    from evfabric.local.owner import SubscriptionOwner

__all__ = ["Listener", "Subscription"]

Listener = Callable[[Event], Any]
"""A listener receives the :class:`Event`; its return value is ignored (awaited if awaitable)."""


class Subscription:
    """A handle on one subscription: manage its listeners, or end it.

    Listeners are called in the order they were added. Adding or removing a listener is safe
    while events are being dispatched (the dispatcher works on a snapshot).
    """

    __slots__ = ("_handle", "_inbox", "_listeners", "_lock", "_service", "active", "filter", "name", "pattern")

    def __init__(self, service: SubscriptionOwner, pattern: Pattern, filter: Filter | None, name: str) -> None:
        self.pattern = pattern
        self.filter = filter
        self.name = name
        self._listeners: tuple[Listener, ...] = ()
        self._service = service
        self._handle = 0
        self._lock = threading.Lock()
        self._inbox: _Inbox | None = None
        self.active = True

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The listeners, in call order."""
        return self._listeners

    @property
    def filter_in_use(self) -> Filter | None:
        """The filter this subscription's events pass: ``filter``, which the service applies, or
        one a subclass applies itself before the hand-off (fabric subscriptions)."""
        return self.filter

    def add_listener(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for every matching event from now on; returns the listener
        (so this works as a decorator)."""
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        with self._lock:
            self._listeners = (*self._without_early_inbox(self._listeners, listener), listener)
        return listener

    def _without_early_inbox(self, listeners: tuple[Listener, ...], added: Listener) -> tuple[Listener, ...]:
        """``listeners`` less the early inbox when the user adds ``added`` before ever pulling
        (the user chose listeners over pulling: the inbox steps aside). Call under the lock."""
        inbox = self._inbox
        if inbox is None or inbox.pulled or added == inbox.put:
            return listeners
        self._inbox = None
        return tuple(fn for fn in listeners if fn != inbox.put)

    def remove_listener(self, listener: Listener) -> bool:
        """Stop calling ``listener``; False if it was not registered."""
        with self._lock:
            if listener not in self._listeners:
                return False
            items = list(self._listeners)
            items.remove(listener)
            self._listeners = tuple(items)
            return True

    def unsubscribe(self) -> None:
        """End the subscription: no listener of it is called for events published afterwards."""
        self._service._remove_subscription(self)

    def matches(self, event: Event) -> bool:
        """True when the event's topic matches the pattern and the filter (if any) accepts it."""
        return self.pattern.matches(event.topic) and (self.filter is None or self.filter(event))

    # -- pull-style consumption: for ev in sub.events(), ev = sub.next(), async for ev in sub ------------

    def _pull(self, early: bool = False) -> _Inbox:
        """The inbox the pull methods read, a listener of this subscription.

        ``subscribe()`` without a listener creates it ``early``: it then keeps events until the
        first pull (at most :data:`PULL_BUFFER`, dropping the oldest), unless the user adds a
        listener before pulling, which removes it. Otherwise it is created on the first pull. A
        reliable fabric event is acknowledged once queued here.
        """
        with self._lock:
            inbox, created = (self._inbox, False) if self._inbox is not None else (_Inbox(self), True)
            self._inbox = inbox
        if created:
            self.add_listener(inbox.put)  # through the subclass's add_listener (reliable settling)
        if not early:
            inbox.pulled = True
        return inbox

    def _pump(self, inbox: _Inbox, deadline: float | None) -> Event | None:
        # a ``sync`` service delivers only in process_events(): pull calls it themselves
        sync = getattr(self._service, "mode", None) == "sync"
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if sync:
                self._service.process_events()
            ev = inbox.get(0.0 if sync else (0.25 if left is None else min(left, 0.25)))
            if ev is not None:
                return ev
            if sync and (left is None or left > 0):
                time.sleep(min(0.002, left or 0.002))  # sync mode has nothing to wait on but the queue
            if not self.active or (left is not None and left <= 0):
                return None

    def next(self, timeout: float | None = None) -> Event:
        """The next matching event; raises :class:`ReceiveTimeout` after ``timeout`` seconds
        (None: wait for ever) or once the subscription ended. Not on an asyncio service's loop
        thread: there, ``await sub.anext()``."""
        ev = self._pump(self._pull(), None if timeout is None else time.monotonic() + timeout)
        if ev is None:
            raise ReceiveTimeout(f"no event on {self.pattern.text!r} within {timeout} s"
                                 if self.active else f"subscription {self.name} ended")
        return ev

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Iterate over matching events; stops after ``timeout`` idle seconds (None: never) or when
        the subscription ends: ``for ev in sub.events(timeout=5): ...``."""
        inbox = self._pull()
        while (ev := self._pump(inbox, None if timeout is None else time.monotonic() + timeout)) is not None:
            yield ev

    async def anext(self, timeout: float | None = None) -> Event:
        """``await sub.anext(timeout)``: the asyncio twin of :meth:`next`."""
        ev = await self._pull().aget(timeout, lambda: self.active)
        if ev is None:
            raise ReceiveTimeout(f"no event on {self.pattern.text!r} within {timeout} s"
                                 if self.active else f"subscription {self.name} ended")
        return ev

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Event]:
        inbox = self._pull()
        while (ev := await inbox.aget(None, lambda: self.active)) is not None:
            yield ev

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            self.unsubscribe()

    def __repr__(self) -> str:
        flt = f", filter={self.filter.expression!r}" if self.filter else ""
        return f"<Subscription {self.name} {self.pattern.text!r}{flt} listeners={len(self._listeners)}>"


PULL_BUFFER = 10_000
"""Events a subscription without listeners keeps for its first pull (then the oldest go)."""


class _Inbox:
    """Events queued for pull-style readers, waited on from threads or asyncio loops."""

    __slots__ = ("_cond", "_items", "_sub", "_waiters", "dropped", "pulled")

    def __init__(self, sub: Subscription) -> None:
        self._items: deque[Event] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._sub = sub
        self.pulled = False
        self.dropped = 0  # events dropped before the first pull (PULL_BUFFER)

    def put(self, event: Event) -> None:
        if not self.pulled:
            if len(self._sub.listeners) > 1:  # (fabric subscriptions) the user chose listeners: step aside
                self._sub.remove_listener(self.put)
                self._sub._inbox = None
                self._items.clear()
                return
            if len(self._items) >= PULL_BUFFER:
                self._items.popleft()
                self.dropped += 1
        with self._cond:
            self._items.append(event)
            self._cond.notify()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_wake, fut)

    def get(self, timeout: float) -> Event | None:
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            return self._items.popleft()

    async def aget(self, timeout: float | None, alive: Callable[[], bool]) -> Event | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._items:
                    return self._items.popleft()
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            left = None if deadline is None else deadline - loop.time()
            if (left is not None and left <= 0) or not alive():
                return None
            try:
                await asyncio.wait_for(fut, 0.25 if left is None else min(left, 0.25))
            except TimeoutError:
                continue  # look again (and whether the subscription ended)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
