"""The fabric: the event service over a NATS broker (``evfabric.connect``), and its broker.

* :func:`connect` / :class:`Client`: blocking client for ordinary code;
  :func:`connect_async` / :class:`AsyncClient`: the asyncio client. Same publish / subscribe /
  listener model as :class:`evfabric.EventService`.
* Delivery (:mod:`.delivery`): ``best_effort`` over NATS core, ``reliable`` over JetStream,
  chosen per publish, per topic or by a rule on the event.
* Batching (:mod:`.batching`), topics as durable streams (:mod:`.streams`), replay start
  positions (:mod:`.replay`), consumers, groups and dead letters (:mod:`.consumers`), subject
  mapping (:mod:`.subjects`).
* The broker launcher (:mod:`.server`) and cluster / leaf helpers.

Importing this package does not import nats-py until a client is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AsyncClient", "Client", "FabricSubscription", "TopicConfig", "TopicInfo", "connect", "connect_async"]

_LAZY = {
    "AsyncClient": "evfabric.fabric.aio",
    "connect_async": "evfabric.fabric.aio",
    "FabricStats": "evfabric.fabric.aio",
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
