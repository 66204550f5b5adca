"""Node metrics as threshold events with hysteresis (Nitro: emit only on crossings).

A :class:`Threshold` watches one metric. It goes ``high`` when the value reaches ``high`` and
back to ``normal`` only when the value falls to ``low`` (< ``high``): between the two nothing
changes, so a value jittering around one level does not produce a stream of events.
:meth:`Threshold.update` returns the new state on a crossing and ``None`` otherwise.

Metric sources give one reading per call, a map ``{"load": .., "mem": .., "temp": ..}``:
:class:`HostMetrics` reads this host (load average per CPU, memory use, a temperature sensor if
the host has one, else a temperature simulated from the load); :class:`SimulatedMetrics` makes
per-node readings from the node's own utilisation, for many simulated nodes on one host.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psutil

from evfabric.core.errors import ConfigError

__all__ = ["DEFAULT_THRESHOLDS", "HostMetrics", "SimulatedMetrics", "Threshold", "ThresholdSpec"]

State = Literal["normal", "high"]


@dataclass(frozen=True)
class ThresholdSpec:
    """``metric`` is high from ``high`` up, normal again from ``low`` down."""

    metric: str
    high: float
    low: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigError(f"threshold {self.metric}: low ({self.low}) must be below high ({self.high})")


DEFAULT_THRESHOLDS = (
    ThresholdSpec("load", high=0.9, low=0.6),  # load average per CPU
    ThresholdSpec("mem", high=85.0, low=75.0),  # percent
    ThresholdSpec("temp", high=70.0, low=62.0),  # degrees C
)


class Threshold:
    """The two-state machine of one :class:`ThresholdSpec`; starts ``normal``."""

    def __init__(self, spec: ThresholdSpec) -> None:
        self.spec = spec
        self.state: State = "normal"
        self.value: float | None = None

    def update(self, value: float) -> State | None:
        """Take a reading; return the new state if it crossed, else None."""
        self.value = value
        if self.state == "normal" and value >= self.spec.high:
            self.state = "high"
            return "high"
        if self.state == "high" and value <= self.spec.low:
            self.state = "normal"
            return "normal"
        return None


class SimulatedMetrics:
    """Readings of a simulated node, driven by ``utilisation()`` (busy slots / slots, 0..1).

    Load follows utilisation with noise, memory grows with it, and the temperature heats towards
    ``ambient + 45 * utilisation`` with a lag (a first-order system), so crossings happen when a
    node fills up or drains, as on a real node.
    """

    def __init__(self, utilisation: Callable[[], float], seed: int = 0, ambient: float = 35.0) -> None:
        self._util = utilisation
        self._rng = random.Random(seed)
        self._temp = ambient
        self._ambient = ambient

    def __call__(self) -> dict[str, float]:
        u = self._util()
        rng = self._rng
        self._temp += 0.3 * (self._ambient + 45.0 * u - self._temp) + rng.gauss(0.0, 0.5)
        return {
            "load": max(0.0, u + rng.gauss(0.0, 0.05)),
            "mem": min(100.0, 20.0 + 60.0 * u + rng.gauss(0.0, 2.0)),
            "temp": self._temp,
        }


class HostMetrics:
    """Readings of this host via psutil; the temperature is simulated when no sensor exists."""

    def __init__(self, seed: int = 0) -> None:
        self._cpus = psutil.cpu_count() or 1
        self._fallback = SimulatedMetrics(lambda: min(1.0, psutil.getloadavg()[0] / self._cpus), seed)
        self.simulated_temperature = self._sensor() is None

    @staticmethod
    def _sensor() -> float | None:
        read = getattr(psutil, "sensors_temperatures", None)
        if read is None:
            return None
        try:
            for entries in read().values():
                for entry in entries:
                    if entry.current:
                        return float(entry.current)
        except (OSError, RuntimeError):
            return None
        return None

    def __call__(self) -> dict[str, float]:
        temp = self._sensor()
        if temp is None:
            temp = self._fallback()["temp"]
        return {
            "load": psutil.getloadavg()[0] / self._cpus,
            "mem": psutil.virtual_memory().percent,
            "temp": temp,
        }
