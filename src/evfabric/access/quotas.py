"""Per-identity quotas the topic service enforces: streams, storage, consumers, connections.

JetStream reserves a stream's ``max_bytes`` in the server's store when the stream is created, so
one user asking for 8 GiB starves everyone else. Every non-administrator topic therefore gets a
``max_bytes``: the one asked for, which may not exceed :attr:`Quotas.topic_bytes`, or that cap
by default; the sum over an owner's topics may not exceed :attr:`Quotas.storage`.
Administrators have no quotas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from evfabric.core.errors import QuotaExceeded
from evfabric.fabric.streams import TopicConfig

__all__ = ["Quotas", "check_consumers", "check_topic"]


@dataclass(frozen=True)
class Quotas:
    """Limits per identity (the owner of a topic, the holder of a consumer, a connected user)."""

    streams: int = 50
    storage: int = 2 << 30
    topic_bytes: int = 256 << 20
    consumers: int = 500
    connections: int = 64


def check_topic(quotas: Quotas, owner: str, config: TopicConfig, others: Iterable[TopicConfig]) -> TopicConfig:
    """``config`` with its ``max_bytes`` set within the quotas of ``owner``, whose other topics
    (streams) are ``others``; :class:`QuotaExceeded` naming the figures if it does not fit."""
    others = [o for o in others if o.name != config.name]
    if len(others) + 1 > quotas.streams:
        raise QuotaExceeded(f"{owner!r} has {len(others)} topics with streams; the quota is {quotas.streams}")
    wanted = config.max_bytes if config.max_bytes is not None else quotas.topic_bytes
    if wanted > quotas.topic_bytes:
        raise QuotaExceeded(f"topic {config.name!r}: max_bytes {wanted} exceeds the per-topic cap {quotas.topic_bytes}")
    used = sum(o.max_bytes or quotas.topic_bytes for o in others)
    if used + wanted > quotas.storage:
        raise QuotaExceeded(f"topic {config.name!r}: {owner!r} reserves {used} bytes already; {wanted} more exceeds "
                            f"the storage quota {quotas.storage}")
    return replace(config, max_bytes=wanted)


def check_consumers(quotas: Quotas, holder: str, held: int) -> None:
    """:class:`QuotaExceeded` when ``holder``, holding ``held`` consumers, may not get another."""
    if held + 1 > quotas.consumers:
        raise QuotaExceeded(f"{holder!r} holds {held} consumers; the quota is {quotas.consumers}")
