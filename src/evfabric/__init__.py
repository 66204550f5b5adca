"""evfabric: an event fabric for HPC, HTC and scientific computing.

    import evfabric
    svc = evfabric.EventService()                  # in-process, no server needed
    client = evfabric.connect("nats://127.0.0.1:4222")  # the same model over a broker
"""

from __future__ import annotations

from typing import Any

from evfabric.core.errors import EvfabricError
from evfabric.core.event import BEST_EFFORT, RELIABLE, Event, make_event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.local.facade import CCAEventService
from evfabric.local.service import EventService
from evfabric.local.subscription import Subscription

__version__ = "0.1.0"

__all__ = [
    "BEST_EFFORT",
    "RELIABLE",
    "CCAEventService",
    "Event",
    "EventService",
    "EvfabricError",
    "Filter",
    "Pattern",
    "Subscription",
    "connect",
    "make_event",
]


def __getattr__(name: str) -> Any:
    # The networked fabric (nats-py, asyncio) is imported only by those who use it.
    if name in ("connect", "connect_async"):
        import evfabric.fabric as fabric

        return getattr(fabric, name)
    raise AttributeError(f"module 'evfabric' has no attribute {name!r}")
