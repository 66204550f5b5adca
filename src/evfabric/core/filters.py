"""Service-side event filters written in CEL (the Common Expression Language).

A filter is compiled once, when a subscription or trigger is created, and refused then with
:class:`~evfabric.core.errors.InvalidFilter` if it does not parse. It sees these variables:

* ``topic``, ``source``, ``type``, ``id``, ``time``, ``seq``, ``delivery``, ``key``, ``ttl``;
* ``header``: every header field as a map (``extra`` fields merged in);
* ``body``: the event body as a map.

Example: ``topic.startsWith("lab.") && body.temperature > 30.0``. An expression that fails at
evaluation time for one event (say, ``body.x`` on an event without ``x``) does not match it;
such failures are counted in :attr:`Filter.errors` rather than raised into the dispatcher.
An expression that evaluates to a non-boolean is an error of the same kind.
"""

from __future__ import annotations

from typing import Any

import cel

from evfabric.core.errors import InvalidFilter
from evfabric.core.event import Event

__all__ = ["Filter"]


class Filter:
    """A compiled CEL predicate on events."""

    __slots__ = ("expression", "_program", "errors", "last_error")

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidFilter(f"a filter must be a non-empty CEL expression, got {expression!r}")
        try:
            self._program = cel.compile(expression)
        except Exception as exc:  # the CEL library raises ValueError with the parser's message
            raise InvalidFilter(f"filter {expression!r} does not compile: {exc}") from None
        self.expression = expression
        self.errors = 0
        self.last_error: str | None = None

    @staticmethod
    def context(event: Event) -> dict[str, Any]:
        """The variables a filter sees for ``event``."""
        return {
            "topic": event.topic,
            "source": event.source,
            "type": event.type,
            "id": event.id,
            "time": event.time,
            "seq": event.seq,
            "delivery": event.delivery,
            "key": event.key,
            "ttl": event.ttl,
            "header": event.header,
            "body": event.body,
        }

    def __call__(self, event: Event) -> bool:
        """True when the expression holds for ``event``; False (and counted) when it errs."""
        try:
            result = self._program.execute(self.context(event))
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        if result is True:
            return True
        if result is not False:
            self.errors += 1
            self.last_error = f"filter returned {result!r}, not a bool"
        return False

    def __repr__(self) -> str:
        return f"Filter({self.expression!r})"
