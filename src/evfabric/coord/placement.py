"""Placement: which processing element (PE) owns which task, balanced by weight."""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence

from evfabric.core.errors import ConfigError

__all__ = ["balance", "measured_weights"]


def balance(weights: Sequence[float], workers: int, groups: Sequence[Hashable] | None = None) -> list[int]:
    """Assign tasks to ``workers`` PEs; returns ``owner[task] -> pe``.

    Tasks of one group stay together. Groups are placed heaviest first on the currently
    lightest PE (the LPT rule: within 4/3 of the optimal makespan). Ties go to the lower PE and
    groups are visited in first-appearance order, so every rank computes the same placement.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, not {workers}")
    groups = list(groups) if groups is not None else list(range(len(weights)))
    load: dict[Hashable, float] = {}
    members: dict[Hashable, list[int]] = {}
    for task, (g, w) in enumerate(zip(groups, weights, strict=True)):
        load[g] = load.get(g, 0.0) + float(w)
        members.setdefault(g, []).append(task)
    keys, totals = list(load), list(load.values())
    order = sorted(range(len(keys)), key=lambda k: -totals[k])  # stable: ties keep first appearance
    pes = [(0.0, pe) for pe in range(workers)]
    owner = [0] * len(groups)
    for k in order:
        pe_load, pe = heapq.heappop(pes)
        g = keys[k]
        for task in members[g]:
            owner[task] = pe
        heapq.heappush(pes, (pe_load + load[g], pe))
    return owner


def measured_weights(events_per_task: Sequence[int], floor: float = 1.0) -> list[float]:
    """Weights from a previous run's per-task event counts (never below ``floor``)."""
    return [max(float(n), floor) for n in events_per_task]
