"""``run``: simulate a model in any mode and placement and summarise it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evfabric.coord.execute import execute
from evfabric.coord.kernel import INF
from evfabric.coord.stats import Stats
from evfabric.sim.lp import Model

__all__ = ["Result", "run"]


@dataclass
class Result:
    """A simulation's committed results (``results`` from the model), its statistics, the
    committed ``emit`` records and each LP's report."""

    results: dict[str, Any]
    stats: Stats
    outputs: list[Any]
    reports: list[dict[str, Any]]


def run(
    model: Model,
    until: float = INF,
    mode: str = "sequential",
    workers: int = 1,
    placement: str = "threads",
    **options: Any,
) -> Result:
    """Simulate ``model`` up to time ``until`` (events at exactly ``until`` are included).

    ``mode`` is ``"sequential"``, ``"conservative"`` or ``"optimistic"``; ``placement`` is
    ``"threads"``, ``"processes"`` or ``"mpi"`` (see :func:`evfabric.coord.execute.execute`,
    which also takes ``sync``, ``owner``, ``timeout``, ``batch`` and ``window``). For one model
    and seed, ``results`` and ``outputs`` are identical in every mode, placement and number of
    workers.
    """
    ex = execute(model, until, mode, workers, placement, **options)
    return Result(model.summarize(ex.reports), ex.stats, ex.outputs, ex.reports)
