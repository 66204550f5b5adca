"""The fabric client: the event service over a NATS broker (``evfabric.connect``).

* :func:`connect` / :class:`Client`: blocking client for ordinary code;
  :func:`connect_async` / :class:`AsyncClient`: the asyncio client. Same publish / subscribe /
  listener model as :class:`evfabric.EventService`.
* Delivery (:mod:`.delivery`): ``best_effort`` over NATS core, ``reliable`` over JetStream,
  chosen per publish, per topic or by a rule on the event.
* Batching (:mod:`.batching`), topics as durable streams (:mod:`.streams`), replay start
  positions (:mod:`.replay`), consumers (:mod:`.consumers` best effort, :mod:`.pull` reliable)
  handing ``(events, settle)`` to an :class:`~evfabric.fabric.handler.EventHandler`, dead letters
  (:mod:`.deadletter`), loss accounting (:mod:`.receive`, :mod:`.losses`), subject mapping
  (:mod:`.subjects`).
* The synchronous clients of a process share one loop thread (:mod:`.shared_loop`) and one
  pool of listener threads (:mod:`.dispatch_pool`).
* The broker itself (launcher, cluster, leaf nodes) is :mod:`evfabric.broker`; the outage relay
  used by tests is :mod:`evfabric.testing.relay`.

Importing this package does not import nats-py until a client is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AsyncClient", "Client", "FabricSubscription", "TopicConfig", "TopicInfo", "connect", "connect_async"]

_LAZY = {
    "AsyncClient": "evfabric.fabric.aio",
    "connect_async": "evfabric.fabric.aio",
    "FabricStats": "evfabric.fabric.stats",
    "Client": "evfabric.fabric.client",
    "connect": "evfabric.fabric.client",
    "FabricSubscription": "evfabric.fabric.subscription",
    "TopicConfig": "evfabric.fabric.streams",
    "TopicInfo": "evfabric.fabric.streams",
    "Ticket": "evfabric.fabric.batching",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evfabric.fabric' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
