"""The client's view of the catalog: which durable topic covers a topic, as a :class:`TopicConfig`.

Connecting reads nothing; the first use of a topic costs one catalog lookup (then cached), and
the answers are built from the catalog's records (:mod:`evfabric.fabric.catalog`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import nats.errors
import nats.js.errors as jserr
from nats.js import JetStreamContext

from evfabric.core.topics import Pattern
from evfabric.fabric.catalog import MISSING, TopicCache
from evfabric.fabric.streams import TopicConfig, config_of

__all__ = ["TopicCatalog"]

log = logging.getLogger("evfabric.fabric")


def _config_once(rec: dict[str, Any]) -> TopicConfig:
    """The :class:`TopicConfig` of catalog record ``rec``, built once per record (not per publish)."""
    cfg = rec.get("_config")
    if cfg is None:
        cfg = rec["_config"] = config_of(rec["config"])
    return cfg


class TopicCatalog:
    """Which topic (stream) covers a published topic, resolved on demand from the catalog.

    Connecting reads nothing; the first use of a topic costs one catalog lookup (then cached).
    """

    def __init__(self, js: JetStreamContext, refresh: float = 1.0, timeout: float = 1.0) -> None:
        self.cache = TopicCache(js)
        self.refresh = refresh
        self.timeout = timeout
        self._seen: dict[str, TopicConfig] = {}
        self._stale_at = 0.0

    async def load(self) -> None:
        """Forget every cached answer (the next use of each topic asks the catalog again)."""
        self.cache.clear()
        self._stale_at = time.monotonic()

    def note(self, config: TopicConfig) -> None:
        """Remember a topic this client created, changed or read."""
        self._seen[config.name] = config
        self.cache.note({"config": config.as_dict(), "stream": config.stream})

    def forget(self, name: str) -> None:
        """Drop a deleted topic."""
        self._seen.pop(name, None)
        self.cache.forget(name)

    def known(self, topic: str) -> bool:
        """True when :meth:`covering` can answer for ``topic`` without the broker."""
        return self.cache.cached_cover(topic) is not MISSING

    def from_parts(self, topic: str) -> Any:  # TopicConfig, None or MISSING
        """On a miss: the topic covering ``topic`` made from cached parts (a topic above it, its
        namespace known to have none), remembered; ``MISSING`` when only the broker can tell."""
        rec = self.cache.answer(topic)
        return rec if rec is MISSING or rec is None else _config_once(rec)

    def expired(self, topic: str) -> bool:
        """True when "no topic covers ``topic``" is cached but expired (see ``TopicCache.expired``)."""
        return self.cache.expired(topic)

    def covering(self, topic: str) -> TopicConfig | None:
        """The cached topic whose stream stores ``topic``, or None (no broker call)."""
        rec = self.cache.cached_cover(topic)
        return _config_once(rec) if isinstance(rec, dict) else None

    async def resolve(self, topic: str) -> TopicConfig | None:
        """The topic whose stream stores ``topic`` (one catalog lookup on a miss, then cached)."""
        try:
            rec = await asyncio.wait_for(self.cache.cover(topic), self.timeout)
        except (jserr.Error, nats.errors.Error, TimeoutError) as exc:
            # no JetStream (a core-only server), or the broker is away: route as unpartitioned
            # now, ask again next time
            log.debug("topic lookup for %s failed: %r", topic, exc)
            return None
        return None if rec is None else config_of(rec["config"])

    async def covering_fresh(self, topic: str) -> TopicConfig | None:
        """Like :meth:`resolve`, asking the catalog again on a miss (the cache may be stale)."""
        rec = await self.cache.cover(topic, fresh=True)
        return None if rec is None else config_of(rec["config"])

    async def matching(self, pattern: Pattern) -> list[TopicConfig]:
        """The topics whose events ``pattern`` may match (read from the catalog)."""
        return [config_of(r["config"]) for r in await self.cache.matching(pattern)]

    def all(self) -> list[TopicConfig]:
        """The topics this client has seen."""
        return list(self._seen.values())
