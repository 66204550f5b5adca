"""Choosing the delivery of each event: Nitro's hybrid model.

The delivery of one publish is, in this order of precedence:

1. the ``delivery=`` argument of that publish call;
2. the first rule whose predicate holds for the event (a CEL expression compiled to a
   :class:`~evfabric.core.filters.Filter`, or any callable ``Event -> bool``);
3. the policy of the topic: the most recently set pattern that matches the topic;
4. the client's default (``best_effort`` unless configured otherwise).

Without rules, the answer depends only on the topic and is cached per topic.
"""

from __future__ import annotations

from collections.abc import Callable

from evfabric.core.errors import ConfigError
from evfabric.core.event import BEST_EFFORT, DELIVERY_MODES, Event
from evfabric.core.filters import Filter
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern

__all__ = ["DeliveryPolicy", "Rule", "check_delivery"]

Rule = str | Filter | Callable[[Event], bool]


def check_delivery(delivery: str) -> str:
    """Return ``delivery`` if it is a delivery, else raise :class:`ConfigError`."""
    if delivery not in DELIVERY_MODES:
        raise ConfigError(f"delivery must be one of {DELIVERY_MODES}, got {delivery!r}")
    return delivery


class DeliveryPolicy:
    """Per-topic defaults and per-event rules that pick ``best_effort`` or ``reliable``."""

    def __init__(self, default: str = BEST_EFFORT) -> None:
        self.default = check_delivery(default)
        self._topics: PatternIndex[tuple[int, str]] = PatternIndex()
        self._order = 0
        self._rules: list[tuple[Callable[[Event], bool], str]] = []
        self._cache: dict[str, str] = {}

    def set_topic(self, pattern: str, delivery: str) -> None:
        """Events on topics matching ``pattern`` use ``delivery`` unless a rule or the call says otherwise."""
        check_delivery(delivery)
        self._order += 1
        self._topics.add(Pattern(pattern), (self._order, delivery))
        self._cache.clear()

    def add_rule(self, predicate: Rule, delivery: str) -> None:
        """Events for which ``predicate`` holds use ``delivery`` (rules are tried in the order added).

        ``predicate`` is a CEL expression (see :mod:`evfabric.core.filters`) or a callable.
        """
        check_delivery(delivery)
        fn: Callable[[Event], bool] = Filter(predicate) if isinstance(predicate, str) else predicate
        if not callable(fn):
            raise ConfigError(f"a delivery rule must be a CEL expression or a callable, got {predicate!r}")
        self._rules.append((fn, delivery))

    @property
    def has_rules(self) -> bool:
        """True when some rule looks at events (the delivery is then not a function of the topic alone)."""
        return bool(self._rules)

    def for_topic(self, topic: str) -> str:
        """The delivery that the topic policy (or the default) gives ``topic``; ignores rules."""
        delivery = self._cache.get(topic)
        if delivery is None:
            hits = self._topics.match(topic)
            delivery = max(hits)[1] if hits else self.default
            self._cache[topic] = delivery
        return delivery

    def for_event(self, event: Event) -> str:
        """The delivery for ``event``: the first rule that holds, else :meth:`for_topic`."""
        for fn, delivery in self._rules:
            if fn(event):
                return delivery
        return self.for_topic(event.topic)
