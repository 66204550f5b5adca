"""Test tooling: an in-memory broker for unit tests, real brokers for the rest.

* :class:`MemoryBroker` (:mod:`.memory`): the fabric's semantics in one process, no server;
  ``broker.connect(source=...)`` gives a :class:`~evfabric.bus.Bus` (``await
  broker.connect_async(...)`` an :class:`~evfabric.bus.AsyncBus`), ``broker.join()`` waits until
  every published event is handled.
* :class:`~evfabric.core.clocks.ManualClock`: a clock tests move by hand (TTLs, retention).
* :func:`running_broker`, :func:`running_cluster`, :func:`running_leaf_pair` (:mod:`.servers`):
  real nats-server processes on free 127.0.0.1 ports, always stopped at the end.
* :func:`wait_until`, :func:`wait_until_async`, :func:`wait_for` (:mod:`.waiting`): poll a
  condition with a bounded timeout instead of sleeping.
* :func:`connection_refused` (:mod:`.refusal`): whether a broker refuses some credentials.
"""

from __future__ import annotations

from evfabric.core.clocks import ManualClock
from evfabric.testing.memory import MemoryBroker, MemoryClient, MemoryStats, MemorySubscription, SubscriptionStats
from evfabric.testing.memory_aio import AsyncMemoryClient
from evfabric.testing.refusal import connection_refused
from evfabric.testing.servers import (
    BrokerCluster,
    BrokerServer,
    HubAndLeaf,
    running_broker,
    running_cluster,
    running_leaf_pair,
)
from evfabric.testing.waiting import wait_for, wait_until, wait_until_async

__all__ = [
    "AsyncMemoryClient",
    "BrokerCluster",
    "BrokerServer",
    "HubAndLeaf",
    "ManualClock",
    "MemoryBroker",
    "MemoryClient",
    "MemoryStats",
    "MemorySubscription",
    "SubscriptionStats",
    "connection_refused",
    "running_broker",
    "running_cluster",
    "running_leaf_pair",
    "wait_for",
    "wait_until",
    "wait_until_async",
]
