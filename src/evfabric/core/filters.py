"""Service-side event filters written in CEL (the Common Expression Language).

A filter is compiled once, when a subscription or trigger is created, and refused then with
:class:`~evfabric.core.errors.InvalidFilter` if it does not parse. It sees these variables:

* ``topic``, ``source``, ``type``, ``id``, ``time``, ``seq``, ``delivery``, ``key``, ``ttl``;
* ``header``: every header field as a map (``extra`` fields merged in);
* ``body``: the event body as a map.

Example: ``topic.startsWith("lab.") && body.temperature > 30.0``.

* A name the filter cannot see (``bodyy.x > 3``) is refused at compile time with
  :class:`~evfabric.core.errors.InvalidFilter` naming it and the names it may use.
* An expression that fails at evaluation time for one event (``body.x`` on an event without
  ``x``, ``body.x > "3"`` on a number: no matching overload) does not match it; such failures are
  counted in :attr:`Filter.errors`, the first is kept in :attr:`Filter.last_error`, logged once
  and handed once to :attr:`Filter.on_error` (the event service publishes it as
  ``cca.filter.error``), so a filter that never matches is seen, not silent.
* An expression that evaluates to a non-boolean is an error of the same kind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from evfabric.core.errors import InvalidFilter
from evfabric.core.event import Event

__all__ = ["VARIABLES", "Filter"]

log = logging.getLogger("evfabric.filters")

VARIABLES = ("topic", "source", "type", "id", "time", "seq", "delivery", "key", "ttl", "header", "body")
"""The names a filter sees."""

# Comprehension macros bind their own variable: ``list.exists(v, v > 1)``.
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")


class Filter:
    """A compiled CEL predicate on events."""

    __slots__ = ("_program", "errors", "expression", "last_error", "on_error")

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidFilter(f"a filter must be a non-empty CEL expression, got {expression!r}")
        import cel  # here, not at import: the cel package imports its CLI (prompt_toolkit), 0.15 s

        try:
            self._program = cel.compile(expression)
        except Exception as exc:  # the CEL library raises ValueError with the parser's message
            raise InvalidFilter(f"filter {expression!r} does not compile: {exc}") from None
        unknown = set(self._program.variables()) - set(VARIABLES) - set(_BOUND.findall(expression))
        if unknown:
            names = ", ".join(repr(n) for n in sorted(unknown))
            raise InvalidFilter(
                f"filter {expression!r} names {names}, which a filter cannot see; it may use {', '.join(VARIABLES)}"
            )
        self.expression = expression
        self.errors = 0
        self.last_error: str | None = None
        self.on_error: Callable[[Filter, Event, str], None] | None = None
        """Called once, for the first event the filter fails on (with the error text)."""

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
            self._failed(event, f"{type(exc).__name__}: {exc}")
            return False
        if result is True:
            return True
        if result is not False:
            self._failed(event, f"filter returned {result!r}, not a bool")
        return False

    def _failed(self, event: Event, error: str) -> None:
        self.errors += 1
        self.last_error = error
        if self.errors > 1:
            return
        log.warning("filter %r failed on %s %s (does not match; reported once): %s",
                    self.expression, event.topic, event.id, error)
        if self.on_error is not None:
            self.on_error(self, event, error)

    def __repr__(self) -> str:
        return f"Filter({self.expression!r})"
