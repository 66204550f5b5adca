"""Following an edge site's topic from the hub (Octopus's hybrid cloud-to-edge fabric).

An edge site runs a leaf server with its own JetStream domain (``evfabric serve --leaf``); its
producers publish to topics stored *at the edge*, and keep doing so while the link to the hub is
down. :func:`follow_edge_topic` makes the same topic exist on the hub as a stream that *sources*
the edge's stream across the domain: hub consumers subscribe to it as to any topic, and what the
edge published during an outage arrives once the link is back.

The hub stream has no subjects of its own, so an event published at the edge while the link is
up is not stored twice (once through the leaf connection, once by sourcing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from evfabric.fabric.catalog import catalog_put, ensure_catalog
from evfabric.fabric.streams import TopicConfig, TopicInfo, describe_topic

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient
    from evfabric.fabric.client import Client

__all__ = ["edge_api_prefix", "edge_source", "follow_edge_topic", "follow_edge_topic_async", "hub_stream_config"]

log = logging.getLogger("evfabric.fabric")


def edge_api_prefix(domain: str) -> str:
    """The JetStream API prefix that reaches the JetStream of domain ``domain``."""
    return f"$JS.{domain}.API"


def edge_source(stream: str, domain: str, **options: Any) -> Any:
    """A nats-py ``StreamSource`` for a hub stream to source ``stream`` from the leaf whose
    JetStream domain is ``domain``. ``options`` go to ``StreamSource`` (e.g. ``filter_subject``)."""
    from nats.js.api import ExternalStream, StreamSource

    return StreamSource(name=stream, external=ExternalStream(api=edge_api_prefix(domain)), **options)


def hub_stream_config(topic: str, domain: str, **settings: Any) -> Any:
    """The hub-side stream configuration for edge topic ``topic`` of JetStream domain ``domain``.

    ``settings`` are the topic's (``max_age``, ``max_bytes``, ``replicas``...), as for ``create_topic``.
    """
    cfg = TopicConfig(name=topic, **settings).stream_config()
    cfg.subjects = None
    assert cfg.name is not None  # TopicConfig always names its stream
    cfg.sources = [edge_source(cfg.name, domain)]
    cfg.description = f"evfabric topic {topic}, followed from edge domain {domain}"
    return cfg


async def follow_edge_topic_async(client: AsyncClient, topic: str, domain: str, **settings: Any) -> TopicInfo:
    """Create (or keep) on the hub the follower of the edge's topic; return the hub topic's info."""
    cfg = hub_stream_config(topic, domain, **settings)
    try:
        await client.js.add_stream(cfg)
    except Exception as exc:  # the follower exists: bring it to this configuration
        log.debug("follower of %s exists (%r): updating it", topic, exc)
        await client.js.update_stream(cfg)
    config = TopicConfig(name=topic, **settings)
    await ensure_catalog(client.js)  # the hub's catalog names the follower as the topic's stream
    await catalog_put(client.js, "n", config.namespace, {"stream": config.stream, "settings": config.settings()})
    await catalog_put(client.js, "t", topic, {"config": config.as_dict(), "stream": config.stream,
                                              "created": "", "edge_domain": domain})
    client.catalog.note(config)
    return await describe_topic(client.js, topic)


def follow_edge_topic(client: Client, topic: str, domain: str, **settings: Any) -> TopicInfo:
    """The same for the blocking client (``evfabric.connect`` to the hub)."""
    return asyncio.run_coroutine_threadsafe(
        follow_edge_topic_async(client.aio, topic, domain, **settings), client._loop
    ).result(60)
