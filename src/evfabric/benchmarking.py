"""The measuring kit shared by every benchmark in ``bench/``.

A benchmark module ``bench/NAME.py`` defines ``run(quick: bool = False) -> list[Figure]``. Each
:class:`Figure` is a median of several repetitions, measured in the same run as its peer, and
carries the ratio value / peer_value (peer_value / value for figures where lower is better, so
that a ratio above 1 always means "better than the peer").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Figure", "median_of", "rate", "timed", "with_broker"]


@dataclass
class Figure:
    """One measured figure and its peer, measured in the same run."""

    name: str
    unit: str
    value: float
    peer: str
    peer_value: float
    higher_is_better: bool = True
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """value / peer_value, inverted for lower-is-better units; 0 when undefined."""
        if self.value <= 0 or self.peer_value <= 0:
            return 0.0
        if self.higher_is_better:
            return self.value / self.peer_value
        return self.peer_value / self.value

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape DESIGN.md fixes (name, unit, value, peer, peer_value, ratio)."""
        d = asdict(self)
        d.pop("higher_is_better")
        if not d["notes"]:
            d.pop("notes")
        d["ratio"] = round(self.ratio, 4)
        return d


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes (perf_counter)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(samples: list[float]) -> float:
    """The median of ``samples`` (0.0 for an empty list)."""
    return statistics.median(samples) if samples else 0.0


def rate(count: int, fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median events/s over ``repeat`` runs of ``fn``, each handling ``count`` events."""
    return median_of([count / max(timed(fn), 1e-9) for _ in range(repeat)])


def with_broker(figures: Callable[[str, bool], list[Figure]], quick: bool = False) -> list[Figure]:
    """``figures(url, quick)`` against a broker started for them (127.0.0.1, a free port) and
    stopped after: the ``run`` of a benchmark that needs nothing else."""
    from evfabric.broker.server import BrokerServer

    srv = BrokerServer().start()
    try:
        return figures(srv.url, quick)
    finally:
        srv.close()
