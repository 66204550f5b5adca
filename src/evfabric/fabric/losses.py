"""What the fabric client loses on purpose or by force, counted and reported as ``cca`` events.

Best-effort events dropped (a slow consumer, a full local backlog, a full buffer while
disconnected) and messages that are not evfabric batches (garbage) are counted at once in the
client's stats and reported, coalesced, every fraction of a second as one ``cca.fabric.dropped``
event per reason and one ``cca.fabric.garbage`` event, published in the client's in-process
service (only when someone listens there).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from evfabric.local.service import EventService

__all__ = ["DROPPED", "GARBAGE", "LossReport"]

GARBAGE = "cca.fabric.garbage"
"""Messages that were not evfabric batches (body: ``count``, ``subjects``, ``error``)."""
DROPPED = "cca.fabric.dropped"
"""Best-effort events or messages dropped (body: ``reason``, ``count``, ``unit``, ``topics``)."""


class LossReport:
    """Counts drops and garbage into ``stats`` and reports them through ``local``."""

    def __init__(self, stats: Any, local: EventService) -> None:
        self.stats = stats
        self.local = local
        self._drops: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._garbage: collections.Counter[str] = collections.Counter()
        self._garbage_error = ""

    def drop(self, reason: str, topic: str, n: int, unit: str = "events") -> None:
        """Count dropped best-effort events (or messages); reported as ``cca.fabric.dropped``."""
        if unit == "events":
            self.stats.dropped += n
        self._drops[(reason, unit, topic)] += n

    def garbage(self, subject: str, size: int, error: str) -> None:
        """Count a message that did not decode; reported as ``cca.fabric.garbage``."""
        self.stats.garbage += 1
        self._garbage[subject] += 1
        self._garbage_error = f"{error} ({size} bytes)"

    def slow_consumer(self, subject: str) -> None:
        """nats-py dropped a message for a subscription that did not keep up (counted in messages:
        its events are counted as a sequence gap once the next message of its stream arrives)."""
        self.stats.slow_consumer_msgs += 1
        self._drops[("slow_consumer", "messages", subject)] += 1

    async def run(self, every: float = 0.2) -> None:
        """Report every ``every`` seconds until cancelled (the client runs it on its loop)."""
        while True:
            await asyncio.sleep(every)
            self.report()

    def report(self) -> None:
        """Publish (locally) the drops and garbage noted since the last report as ``cca`` events."""
        if self._drops:
            drops, self._drops = self._drops, collections.Counter()
            by: dict[tuple[str, str], dict[str, int]] = {}
            for (reason, unit, topic), n in drops.items():
                by.setdefault((reason, unit), {})[topic] = n
            for (reason, unit), topics in by.items():
                self.local.emit(DROPPED, {"reason": reason, "unit": unit, "count": sum(topics.values()),
                                          "topics": topics})
        if self._garbage:
            garbage, self._garbage = self._garbage, collections.Counter()
            self.local.emit(GARBAGE, {"count": sum(garbage.values()), "subjects": dict(garbage),
                                      "error": self._garbage_error})
