"""Subscription handles (CCA 2.3): a pattern, an optional filter, and the listeners to call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evfabric.core.event import Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern

if TYPE_CHECKING:
    from evfabric.local.service import EventService

__all__ = ["Listener", "Subscription"]

Listener = Callable[[Event], Any]
"""A listener receives the :class:`Event`; its return value is ignored (awaited if awaitable)."""


class Subscription:
    """A handle on one subscription: manage its listeners, or end it.

    Listeners are called in the order they were added. Adding or removing a listener is safe
    while events are being dispatched (the dispatcher works on a snapshot).
    """

    __slots__ = ("pattern", "filter", "name", "_listeners", "_service", "_handle", "_lock", "active")

    def __init__(self, service: EventService, pattern: Pattern, filter: Filter | None, name: str) -> None:
        self.pattern = pattern
        self.filter = filter
        self.name = name
        self._listeners: tuple[Listener, ...] = ()
        self._service = service
        self._handle = 0
        self._lock = threading.Lock()
        self.active = True

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The listeners, in call order."""
        return self._listeners

    def add_listener(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for every matching event from now on; returns the listener
        (so this works as a decorator)."""
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        with self._lock:
            self._listeners = (*self._listeners, listener)
        return listener

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

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            self.unsubscribe()

    def __repr__(self) -> str:
        flt = f", filter={self.filter.expression!r}" if self.filter else ""
        return f"<Subscription {self.name} {self.pattern.text!r}{flt} listeners={len(self._listeners)}>"
