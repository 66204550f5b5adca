"""evfabric: an event fabric for HPC, HTC and scientific computing.

    import evfabric
    svc = evfabric.EventService()                  # in-process, no server needed
    client = evfabric.connect("nats://127.0.0.1:4222")  # the same model over a broker

Both are an :class:`evfabric.Bus` (the asyncio client, ``await evfabric.connect_async(...)``, an
:class:`evfabric.AsyncBus`); ``evfabric.testing.MemoryBroker`` gives Bus clients for unit tests.
Every error evfabric raises is importable from here and derives from :class:`EvfabricError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evfabric.bus import AsyncBus, Bus
from evfabric.core import errors
from evfabric.core.errors import (
    AccessDenied,
    AlreadyExists,
    BrokerUnavailable,
    CausalityError,
    ConfigError,
    DeadlockDetected,
    DecodeError,
    EvfabricError,
    InvalidEvent,
    InvalidFilter,
    InvalidPattern,
    InvalidTopic,
    NotFound,
    PublishRejected,
    PublishTimeout,
    QueueFull,
    ReceiveTimeout,
    ReservedTopic,
    ServiceClosed,
    WorkerFailed,
)
from evfabric.core.event import BEST_EFFORT, RELIABLE, Event, make_event
from evfabric.core.filters import Filter
from evfabric.core.position import Position
from evfabric.core.topics import Pattern
from evfabric.local.facade import CCAEventService
from evfabric.local.service import EventService
from evfabric.local.subscription import Subscription

if TYPE_CHECKING:  # the fabric (nats-py, asyncio) is imported only by those who use it, see __getattr__
    from evfabric.fabric.aio import AsyncClient, connect_async
    from evfabric.fabric.client import Client, connect

__version__ = "0.1.0"

__all__ = [
    "BEST_EFFORT",
    "RELIABLE",
    "AccessDenied",
    "AlreadyExists",
    "AsyncBus",
    "AsyncClient",
    "BrokerUnavailable",
    "Bus",
    "CCAEventService",
    "CausalityError",
    "Client",
    "ConfigError",
    "DeadlockDetected",
    "DecodeError",
    "Event",
    "EventService",
    "EvfabricError",
    "Filter",
    "InvalidEvent",
    "InvalidFilter",
    "InvalidPattern",
    "InvalidTopic",
    "NotFound",
    "Pattern",
    "Position",
    "PublishRejected",
    "PublishTimeout",
    "QueueFull",
    "ReceiveTimeout",
    "ReservedTopic",
    "ServiceClosed",
    "Subscription",
    "WorkerFailed",
    "connect",
    "connect_async",
    "errors",
    "make_event",
]

_LAZY = {
    "connect": "evfabric.fabric.client",
    "Client": "evfabric.fabric.client",
    "connect_async": "evfabric.fabric.aio",
    "AsyncClient": "evfabric.fabric.aio",
}


def __getattr__(name: str) -> Any:
    # Only the names typed above under TYPE_CHECKING: a checker sees their real types.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evfabric' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
