"""Logical processes (LPs) and models: the discrete-event vocabulary on top of coord tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from evfabric.coord.program import Program
from evfabric.coord.task import RUNTIME_ATTRS, Task
from evfabric.core.errors import ConfigError
from evfabric.sim.streams import BLOCK, Stream

__all__ = ["LP", "Model"]

_building = threading.local()  # the model whose make_lp is running on this thread


class LP(Task):
    """A logical process: a task with state, simulated time ``now`` and its own ``rng``.

    Subclasses implement ``init`` (schedule the first events), ``handle(kind, data)`` and
    ``finish() -> dict`` (the LP's report), and schedule events with
    ``self.send(dst, kind, data, delay)``. Only ``self.rng`` may be used for randomness: it is
    the LP's own stream, the same in every mode. State saving (optimistic mode) covers the
    LP's attributes and the stream's position; override :meth:`state`/:meth:`set_state` with
    a cheap copy when the default deep copy is too slow. ``self.model`` is the model that
    built the LP, already set in ``__init__`` (read its parameters there; it is shared, never
    saved or rolled back).

    Random streams (``self.rng``, a :class:`~evfabric.sim.streams.Stream`): ``random()``
    (uniform in [0, 1)), ``exponential(mean)``, ``uniform(a, b)``, ``randrange(n)``,
    ``choice(seq)``.
    """

    __slots__ = ("model", "rng")
    runtime_attrs = RUNTIME_ATTRS | {"rng", "model"}
    rng: Stream
    model: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> LP:
        self = super().__new__(cls)
        assert isinstance(self, LP)
        self.model = getattr(_building, "model", None)
        return self

    def state(self) -> Any:
        """The LP's own state (default: a deep copy of its attributes)."""
        return Task.save(self)

    def set_state(self, state: Any) -> None:
        """Put back what :meth:`state` returned."""
        Task.restore(self, state)

    def save(self) -> Any:
        rng = self.rng
        if rng._kept is None:  # first save: the stream switches to rewindable blocks
            return self.state(), rng.tell()
        # Stream.tell, inlined: this runs before every optimistic event.
        return self.state(), rng._block * BLOCK + BLOCK - rng._it.__length_hint__()  # type: ignore[attr-defined]

    def restore(self, snapshot: Any) -> None:
        state, position = snapshot
        self.set_state(state)
        self.rng.seek(position)

    def release(self, oldest: Any | None) -> None:
        self.rng.forget_before(oldest[1] if oldest is not None else self.rng.tell())


class Model(Program):
    """A simulation model: ``size`` LPs built by :meth:`make_lp`, random streams from ``seed``.

    Subclasses set ``size``, ``lookahead`` (least delay between LPs that may be placed apart),
    ``seed``, and implement :meth:`make_lp` and :meth:`summarize`. A small model may instead
    list its LP classes in ``lps``: LP ``i`` is ``lps[i]()`` and ``size`` is ``len(lps)``;
    its parameters are class attributes, which ``Model(name=value, ...)`` overrides.
    """

    seed: int = 1
    lps: ClassVar[tuple[Callable[[], LP], ...]] = ()

    def __init__(self, **params: Any) -> None:
        for name, value in params.items():
            if name.startswith("_") or not hasattr(type(self), name):
                raise ConfigError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("lps"):
            cls.size = len(cls.lps)

    def make_lp(self, i: int) -> LP:
        """Build LP ``i`` (default: ``lps[i]()``)."""
        if not self.lps:
            raise NotImplementedError(f"{type(self).__name__} must define make_lp(i) or list its LP classes in lps")
        return self.lps[i]()

    def make_task(self, i: int) -> Task:
        _building.model = self
        try:
            lp = self.make_lp(i)
        finally:
            _building.model = None
        lp.rng = Stream(self.seed, i)
        lp.model = self
        return lp

    def summarize(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Model-level results; default: every LP's report merged into one dict (in LP order)."""
        return {k: v for r in reports for k, v in r.items()}
