"""Per-identity quotas the topic service enforces: streams, storage, consumers, connections.

JetStream reserves a stream's ``max_bytes`` in the server's store when the stream is created, so
one user asking for 8 GiB starves everyone else. Every non-administrator topic therefore gets a
``max_bytes``: the one asked for, which may not exceed :attr:`Quotas.topic_bytes`, or that cap
by default; the sum over an owner's topics may not exceed :attr:`Quotas.storage`.
Consumers count per holder; position scans (short-lived headers-only consumers) count apart, in
:attr:`Quotas.scans`. Administrators have no quotas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from nats.js.api import AckPolicy, ConsumerConfig

from evfabric.core.errors import QuotaExceeded
from evfabric.fabric.positions import SCAN_IDLE, SCAN_PREFIX
from evfabric.fabric.streams import TopicConfig

__all__ = ["Quotas", "check_consumers", "check_topic", "is_scan_name", "scan_shape_error"]


@dataclass(frozen=True)
class Quotas:
    """Limits per identity (the owner of a topic, the holder of a consumer, a connected user)."""

    streams: int = 50
    storage: int = 2 << 30
    topic_bytes: int = 256 << 20
    consumers: int = 500
    connections: int = 64
    #: topics in memory (``storage="memory"``) count apart, against the server's much smaller
    #: memory store (256 MiB by default): per topic, and over an owner's memory topics
    memory_topic_bytes: int = 16 << 20
    memory: int = 32 << 20
    #: position scans held at once (:class:`~evfabric.fabric.positions.HeaderScan`: headers only,
    #: no acknowledgements, in memory, deleted when idle) beside ``consumers``: replaying from a
    #: position or counting lag in events works for a user whose consumer quota is full
    scans: int = 16


def check_topic(quotas: Quotas, owner: str, config: TopicConfig, others: Iterable[TopicConfig]) -> TopicConfig:
    """``config`` with its ``max_bytes`` set within the quotas of ``owner``, whose other topics
    (streams) are ``others``; :class:`QuotaExceeded` naming the figures if it does not fit."""
    others = [o for o in others if o.name != config.name]
    if len(others) + 1 > quotas.streams:
        raise QuotaExceeded(f"{owner!r} has {len(others)} topics with streams; the quota is {quotas.streams}")
    memory = config.storage == "memory"
    cap, total, what = ((quotas.memory_topic_bytes, quotas.memory, "memory quota") if memory
                        else (quotas.topic_bytes, quotas.storage, "storage quota"))
    wanted = config.max_bytes if config.max_bytes is not None else cap
    if wanted > cap:
        raise QuotaExceeded(f"topic {config.name!r}: max_bytes {wanted} exceeds the per-topic cap {cap}"
                            f"{' for memory topics' if memory else ''}")
    used = sum(o.max_bytes or cap for o in others if (o.storage == "memory") == memory)
    if used + wanted > total:
        raise QuotaExceeded(f"topic {config.name!r}: {owner!r} reserves {used} bytes already; {wanted} more exceeds "
                            f"the {what} {total}")
    return replace(config, max_bytes=wanted)


def check_consumers(quotas: Quotas, holder: str, held: int, scans: bool = False) -> None:
    """:class:`QuotaExceeded` when ``holder``, holding ``held`` consumers (position scans when
    ``scans``), may not get another."""
    limit, what = (quotas.scans, "position scans") if scans else (quotas.consumers, "consumers")
    if held + 1 > limit:
        raise QuotaExceeded(f"{holder!r} holds {held} {what}; the quota is {limit}")


def is_scan_name(name: str) -> bool:
    """True for the name of a position scan (it counts toward ``Quotas.scans``)."""
    return name.startswith(SCAN_PREFIX)


def scan_shape_error(config: ConsumerConfig) -> str | None:
    """Why ``config``, named as a position scan, is not one (None when it is): a scan reads headers
    only, acknowledges nothing, lives in memory and goes when idle (``SCAN_IDLE`` s at most)."""
    idle = config.inactive_threshold
    if not config.headers_only:
        return "headers_only must be true"
    if config.ack_policy not in (AckPolicy.NONE, AckPolicy.NONE.value):
        return "ack_policy must be none"
    if not config.mem_storage:
        return "mem_storage must be true"
    if idle is None or not 0 < idle <= SCAN_IDLE:
        return f"inactive_threshold must be within (0, {SCAN_IDLE:g}] s"
    return None
