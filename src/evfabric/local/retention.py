"""Retained events (CCA 3.1b: persistence with a time to live), so late subscribers can catch up.

Retention is configured per pattern: events on matching topics are kept for ``ttl`` seconds (and
at most ``max_events`` per topic). An event's own ``ttl`` header, when shorter, wins.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from evfabric.core.clocks import SYSTEM_CLOCK, Clock
from evfabric.core.errors import ConfigError
from evfabric.core.event import Event
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern

__all__ = ["RetainedEvents", "Retention"]


@dataclass(frozen=True)
class Retention:
    """Keep events on topics matching ``pattern`` for ``ttl`` seconds, at most ``max_events`` per topic."""

    pattern: str
    ttl: float
    max_events: int = 10_000

    def __post_init__(self) -> None:
        Pattern(self.pattern)
        if not (isinstance(self.ttl, (int, float)) and self.ttl > 0):
            raise ConfigError(f"retention ttl must be a positive number of seconds, got {self.ttl!r}")
        if not (isinstance(self.max_events, int) and self.max_events > 0):
            raise ConfigError(f"retention max_events must be a positive int, got {self.max_events!r}")


class RetainedEvents:
    """The store of retained events, per topic, pruned by age (on ``clock``) and count. Thread-safe."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._rules: PatternIndex[Retention] = PatternIndex()
        self._by_topic: dict[str, deque[tuple[float, Event]]] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return len(self._rules) > 0

    def add_rule(self, rule: Retention) -> None:
        """Start retaining events on topics matching ``rule.pattern``."""
        self._rules.add(rule.pattern, rule)

    def offer(self, event: Event) -> None:
        """Keep ``event`` if a rule covers its topic (the longest ttl among matching rules)."""
        rules = self._rules.match(event.topic)
        if not rules:
            return
        ttl = max(r.ttl for r in rules)
        if event.ttl is not None:
            ttl = min(ttl, event.ttl)
        limit = max(r.max_events for r in rules)
        with self._lock:
            q = self._by_topic.get(event.topic)
            if q is None or q.maxlen != limit:
                q = self._by_topic[event.topic] = deque(q or (), maxlen=limit)
            q.append((event.time + ttl, event))

    def recent(self, pattern: Pattern | str, since: float | None = None) -> list[Event]:
        """Unexpired retained events on topics matching ``pattern`` (published after ``since``),
        in publish order (by id)."""
        pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        now = self.clock.time()
        out: list[Event] = []
        with self._lock:
            for topic, q in list(self._by_topic.items()):
                while q and q[0][0] < now:
                    q.popleft()
                if not q:
                    del self._by_topic[topic]
                    continue
                if pattern.matches(topic):
                    out.extend(ev for exp, ev in q if exp >= now and (since is None or ev.time > since))
        out.sort(key=lambda ev: ev.id)
        return out

    def prune(self) -> int:
        """Drop expired events now; return how many were dropped."""
        now = self.clock.time()
        dropped = 0
        with self._lock:
            for topic, q in list(self._by_topic.items()):
                while q and q[0][0] < now:
                    q.popleft()
                    dropped += 1
                if not q:
                    del self._by_topic[topic]
        return dropped
