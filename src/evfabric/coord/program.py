"""A timed program: a fixed set of tasks that exchange time-stamped events."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from evfabric.coord.task import Task

__all__ = ["Program"]


class Program:
    """What the timed engines (sequential, conservative, optimistic) run.

    Tasks are numbered ``0 .. size-1`` and built by :meth:`make_task` on the processing element
    that owns them, so a program must be picklable (processes) or built identically on every
    MPI rank. ``lookahead`` is the least delay of any event sent between tasks on different
    processing elements; the conservative mode relies on it (and checks it), the others ignore it.
    """

    size: int = 0
    lookahead: float = 0.0

    def make_task(self, i: int) -> Task:
        """Build task ``i`` (called once, on the processing element that owns it)."""
        raise NotImplementedError

    def weight(self, i: int) -> float:
        """Declared relative load of task ``i`` (used to balance placement); default 1."""
        return 1.0

    def group(self, i: int) -> Hashable:
        """Tasks with equal groups are tightly coupled and always placed together; default: own."""
        return i

    def summarize(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Model-level results from every task's :meth:`Task.finish` report, in task order."""
        return {}
