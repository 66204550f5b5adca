"""What a bounded queue does when it is full (CCA 3.1a: bounded, circular buffers)."""

from __future__ import annotations

from enum import Enum

from evfabric.core.errors import ConfigError

__all__ = ["Overflow", "parse_overflow"]


class Overflow(str, Enum):
    """Overflow policies for bounded event queues."""

    BLOCK = "block"
    """The publisher waits for room (in synchronous mode it flushes the queue itself)."""
    DROP_OLDEST = "drop_oldest"
    """A circular buffer: the oldest queued event is dropped and counted."""
    DROP_NEWEST = "drop_newest"
    """The event being published is dropped and counted."""
    RAISE = "raise"
    """The publisher gets :class:`~evfabric.core.errors.QueueFull`."""


def parse_overflow(value: str | Overflow) -> Overflow:
    """The policy named by ``value``; :class:`ConfigError` listing the choices if unknown."""
    try:
        return Overflow(value)
    except ValueError:
        choices = ", ".join(p.value for p in Overflow)
        raise ConfigError(f"overflow policy {value!r} is unknown; choose one of: {choices}") from None
