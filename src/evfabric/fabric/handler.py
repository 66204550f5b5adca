"""What a consumer hands received events to: ``handler.handle(events, settle)``.

Every consumer (best effort or reliable) ends in one call per broker message to an
:class:`EventHandler` (best effort: per burst of messages received together, in order, possibly
of several topics): the message's events (decoded once, topic and publisher taken from the
subject, already matched against the subscription's pattern and filter, duplicates removed) and a
:class:`Settle` for them. A handler reports the fate of each event with ``settle(event)`` (handled)
or ``settle(event, error)`` (failed); when every event of the message is settled, the consumer
acknowledges the message, or has it redelivered (``-NAK`` with a delay), or dead-letters the
events that failed for good. For best effort, settling is a no-op (nothing is acknowledged).

Plain fabric subscriptions (:class:`~evfabric.fabric.subscription.FabricSubscription`) are
handlers that call the user's listeners in the client's dispatch mode; trigger runners are
handlers that batch events for an action. Acknowledgement is never a listener: statistics count
user listener calls only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from evfabric.core.event import Event

__all__ = ["NO_SETTLE", "EventHandler", "Settle"]


@runtime_checkable
class Settle(Protocol):
    """Settles the events of one broker message; ``attempt`` is its delivery attempt (from 1)."""

    attempt: int

    def __call__(self, event: Event, error: BaseException | None = None) -> None:
        """``event`` was handled (``error`` None) or failed with ``error``. Thread-safe; once per
        event (later calls for the same event are ignored)."""
        ...

    def many(self, events: list[Event]) -> None:
        """Every one of ``events`` was handled (the same as ``settle(ev)`` for each, cheaper)."""
        ...


@runtime_checkable
class EventHandler(Protocol):
    """Receives the events of each broker message with the means to settle them."""

    def handle(self, events: list[Event], settle: Settle) -> None:
        """Take ``events`` (non-empty, in message order); call ``settle`` for each, now or later,
        from any thread. Called on the client's event loop: must not block."""
        ...


class _NoSettle:
    """The settle of best-effort messages: nothing to acknowledge."""

    __slots__ = ()
    attempt = 1

    def __call__(self, event: Event, error: BaseException | None = None) -> None:
        return None

    def many(self, events: list[Event]) -> None:
        return None


NO_SETTLE: Settle = _NoSettle()
"""The :class:`Settle` given with best-effort events (does nothing)."""
