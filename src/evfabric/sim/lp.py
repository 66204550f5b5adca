"""Logical processes (LPs) and models: the discrete-event vocabulary on top of coord tasks."""

from __future__ import annotations

from typing import Any

from evfabric.coord.program import Program
from evfabric.coord.task import RUNTIME_ATTRS, Task
from evfabric.sim.streams import Stream

__all__ = ["LP", "Model"]


class LP(Task):
    """A logical process: a task with state, simulated time ``now`` and its own ``rng``.

    Subclasses implement ``init`` (schedule the first events), ``handle(kind, data)`` and
    ``finish() -> dict`` (the LP's report), and schedule events with
    ``self.send(dst, kind, data, delay)``. Only ``self.rng`` may be used for randomness: it is
    the LP's own stream, the same in every mode. State saving (optimistic mode) covers the
    LP's attributes and the stream's position; override :meth:`state`/:meth:`set_state` with
    a cheap copy when the default deep copy is too slow.
    """

    __slots__ = ("rng",)
    runtime_attrs = RUNTIME_ATTRS | {"rng"}

    def state(self) -> Any:
        """The LP's own state (default: a deep copy of its attributes)."""
        return Task.save(self)

    def set_state(self, state: Any) -> None:
        """Put back what :meth:`state` returned."""
        Task.restore(self, state)

    def save(self) -> Any:
        return self.state(), self.rng.tell()

    def restore(self, snapshot: Any) -> None:
        state, position = snapshot
        self.set_state(state)
        self.rng.seek(position)

    def release(self, oldest: Any | None) -> None:
        self.rng.forget_before(oldest[1] if oldest is not None else self.rng.tell())


class Model(Program):
    """A simulation model: ``size`` LPs built by :meth:`make_lp`, random streams from ``seed``.

    Subclasses set ``size``, ``lookahead`` (least delay between LPs that may be placed apart),
    ``seed``, and implement :meth:`make_lp` and :meth:`summarize`.
    """

    seed: int = 1

    def make_lp(self, i: int) -> LP:
        """Build LP ``i``."""
        raise NotImplementedError

    def make_task(self, i: int) -> Task:
        lp = self.make_lp(i)
        lp.rng = Stream(self.seed, i)
        return lp
