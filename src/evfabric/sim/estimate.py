"""Output analysis: observations after a warm-up, time averages, confidence intervals.

A simulation starts empty and idle, which is not its steady state; statistics should leave out
a *warm-up* period. :class:`Tally` averages observations (a car's time in system) recorded at
or after ``warmup``; :class:`TimeAverage` integrates a level (a queue length) over
``[warmup, end]``. Both are plain objects an LP keeps as state (they deep-copy for rollback).
:func:`confidence_interval` gives a Student-t interval over independent replications and
:func:`replicate` runs them (one seed each).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from evfabric.core.errors import ConfigError

__all__ = ["Interval", "Tally", "TimeAverage", "confidence_interval", "replicate", "t_quantile"]


class Tally:
    """Mean and variance (Welford) of observations made at or after time ``warmup``."""

    __slots__ = ("_m2", "count", "mean", "warmup")

    def __init__(self, warmup: float = 0.0) -> None:
        self.warmup = warmup
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, value: float, at: float = math.inf) -> None:
        """Record ``value`` observed at time ``at`` (ignored if ``at < warmup``)."""
        if at < self.warmup:
            return
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)

    @property
    def variance(self) -> float:
        """Sample variance of the recorded observations (nan below two)."""
        return self._m2 / (self.count - 1) if self.count > 1 else math.nan

    def __deepcopy__(self, memo: dict[int, Any]) -> Tally:
        new = Tally(self.warmup)
        new.count, new.mean, new._m2 = self.count, self.mean, self._m2
        return new


class TimeAverage:
    """Time average of a piecewise-constant level over ``[warmup, end]``.

    Call :meth:`set` with the new level at each change (in nondecreasing time), and
    :meth:`mean` with the end of the observation.
    """

    __slots__ = ("area", "last", "level", "warmup")

    def __init__(self, warmup: float = 0.0, level: float = 0.0) -> None:
        self.warmup = warmup
        self.level = level
        self.last = warmup
        self.area = 0.0

    def set(self, level: float, at: float) -> None:
        """The level becomes ``level`` at time ``at``."""
        if at > self.last:
            self.area += self.level * (at - self.last)
            self.last = at
        self.level = level

    def mean(self, end: float) -> float:
        """The average over ``[warmup, end]`` (nan if ``end <= warmup``)."""
        if end <= self.warmup:
            return math.nan
        return (self.area + self.level * max(0.0, end - self.last)) / (end - self.warmup)

    def __deepcopy__(self, memo: dict[int, Any]) -> TimeAverage:
        new = TimeAverage(self.warmup, self.level)
        new.last, new.area = self.last, self.area
        return new


# Two-sided Student-t quantiles t_{(1+level)/2, df} for df = 1..30 at levels 0.90, 0.95, 0.99.
_T = {
    0.90: (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753,
           1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697),
    0.95: (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
           2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
    0.99: (63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055, 3.012, 2.977, 2.947,
           2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797, 2.787, 2.779, 2.771, 2.763, 2.756, 2.750),
}


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided Student-t quantile for ``df`` degrees of freedom at ``level`` (0.90, 0.95
    or 0.99); above 30 degrees, the normal quantile with a 1/df correction."""
    if level not in _T:
        raise ConfigError(f"confidence level must be one of {sorted(_T)}, not {level}")
    if df < 1:
        raise ConfigError(f"a confidence interval needs at least 2 values (df >= 1), not df = {df}")
    if df <= 30:
        return _T[level][df - 1]
    z = statistics.NormalDist().inv_cdf((1 + level) / 2)
    return z + (z**3 + z) / (4 * df)  # Cornish-Fisher: within 0.1 % for df > 30


class Interval(tuple[float, float]):
    """``(mean, half_width)`` of a confidence interval, with ``low``, ``high``, ``relative``
    (half width over mean) and ``contains(x)``."""

    __slots__ = ()

    def __new__(cls, mean: float, half_width: float) -> Interval:
        return super().__new__(cls, (mean, half_width))

    @property
    def mean(self) -> float:
        return self[0]

    @property
    def half_width(self) -> float:
        return self[1]

    @property
    def low(self) -> float:
        return self[0] - self[1]

    @property
    def high(self) -> float:
        return self[0] + self[1]

    @property
    def relative(self) -> float:
        return self[1] / abs(self[0]) if self[0] else math.inf

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def confidence_interval(values: Iterable[float], level: float = 0.95) -> Interval:
    """Student-t interval for the mean of independent, identically distributed ``values``
    (e.g. one per replication)."""
    xs = [float(v) for v in values]
    if len(xs) < 2:
        raise ConfigError(f"a confidence interval needs at least 2 values, got {len(xs)}")
    mean = statistics.fmean(xs)
    return Interval(mean, t_quantile(len(xs) - 1, level) * statistics.stdev(xs) / math.sqrt(len(xs)))


def replicate(
    model_for_seed: Callable[[int], Any],
    until: float,
    keys: Sequence[str],
    seeds: Iterable[int] = range(1, 11),
    level: float = 0.95,
    **options: Any,
) -> dict[str, Interval]:
    """Run ``model_for_seed(seed)`` for each seed (independent replications) up to ``until``;
    a confidence interval for each result in ``keys``. ``options`` go to :func:`~evfabric.sim.run`."""
    from evfabric.sim.run import run

    values: dict[str, list[float]] = {k: [] for k in keys}
    for seed in seeds:
        res = run(model_for_seed(seed), until, **options).results
        for k in keys:
            values[k].append(res[k])
    return {k: confidence_interval(v, level) for k, v in values.items()}
