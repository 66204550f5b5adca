"""Tasks: the unit of the Event-Based Coordination pattern.

A task is *initialise / (receive event, process, send events) / finalise* (the pattern's
Example 4.32). The runtime calls :meth:`Task.init` once, then :meth:`Task.handle` for every
event delivered to it, in the order the program's ordering mode allows, then
:meth:`Task.finish`. Sends are asynchronous: :meth:`Task.send` returns at once and the runtime
delivers the event later. An existing sequential component becomes a task through
:class:`Facade`, without changing its internals.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Facade", "Task"]

# Attributes the runtime binds on a task; they are not the task's state and are never saved.
RUNTIME_ATTRS = frozenset({"id", "now", "send", "emit", "_ev", "_rec"})


class Task:
    """Base class of a coordinated task.

    The runtime sets ``id`` (an int, unique in the program) and ``now`` (the time stamp of the
    event being handled; 0 in untimed modes), and binds two functions before ``init``:

    * ``send(dst, kind, data=None, delay=0.0)``: send an event to task ``dst``, handled at
      ``now + delay`` (timed modes). Asynchronous: it returns at once. ``data`` must not be
      mutated afterwards (it may be shared with the receiver). A negative delay, or
      (conservative mode, between processing elements) a delay below the lookahead, raises
      :class:`~evfabric.core.errors.CausalityError`.
    * ``emit(record)``: an action on the outside world, recorded only once the current event
      is committed (at once in sequential and conservative modes, at fossil collection in
      optimistic mode).

    The runtime's attributes live in slots; the task's *state* is its other attributes (its
    ``__dict__``, or the slots a subclass declares and saves itself). The optimistic mode saves
    it before each event with :meth:`save` and puts it back with :meth:`restore`; the defaults
    deep-copy ``__dict__``, a task with a small state should override both for speed.
    """

    __slots__ = ("id", "now", "send", "emit", "_ev", "_rec", "__dict__", "__weakref__")
    runtime_attrs: frozenset[str] = RUNTIME_ATTRS

    def __new__(cls, *args: Any, **kwargs: Any) -> Task:
        self = super().__new__(cls)
        self.id, self.now = -1, 0.0
        self.send = self.emit = _detached
        return self

    def init(self) -> None:
        """Called once before any event; may send the first events."""

    def handle(self, kind: str, data: Any) -> None:
        """Process one delivered event of type ``kind`` with payload ``data``.

        The timed engines look ``handle`` up once on the task's class (not on the instance).
        """

    def finish(self) -> dict[str, Any]:
        """Called once at the end (``now`` is the end time); returns this task's report."""
        return {}

    # -- state saving -----------------------------------------------------------------------

    def save(self) -> Any:
        """A snapshot of the task's state (deep copy of its non-runtime attributes)."""
        skip = self.runtime_attrs
        return copy.deepcopy({k: v for k, v in vars(self).items() if k not in skip})

    def restore(self, snapshot: Any) -> None:
        """Put back a snapshot taken by :meth:`save` (each snapshot is restored at most once)."""
        vars(self).update(snapshot)

    def release(self, oldest: Any | None) -> None:
        """Optimistic mode, after a commit: no snapshot older than ``oldest`` (None: than the
        current state) will be restored any more; a task may free what only served those."""


def _detached(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("task is not attached to a runtime")


class Facade(Task):
    """Wrap an existing sequential component as a task (the pattern's Facade use).

    An event of kind ``k`` calls ``component.k(data)``; the return value is sent as an event
    to every ``(dst, kind)`` listed in ``routes[k]`` (after ``delay``). The component itself
    knows nothing about events.
    """

    def __init__(
        self,
        component: Any,
        routes: Mapping[str, Iterable[tuple[int, str]]] | None = None,
        delay: float = 0.0,
        report: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        self.component = component
        self.routes = {k: list(v) for k, v in (routes or {}).items()}
        self.delay = delay
        self._report = report

    def handle(self, kind: str, data: Any) -> None:
        result = getattr(self.component, kind)(data)
        for dst, out_kind in self.routes.get(kind, ()):
            self.send(dst, out_kind, result, self.delay)

    def finish(self) -> dict[str, Any]:
        return self._report(self.component) if self._report else {}
