"""Monotonic totals from successive readings, and a ring buffer of points to draw rates from.

The broker's readings are not counters a scraper can trust: a consumer that is deleted takes its
``delivered`` count with it, a stream that is recreated starts again at sequence 1. A
:class:`Totals` keeps, per key, a total that only grows: it adds each increase of the reading and,
when the reading goes back (reset), the new reading itself.

:class:`History` keeps the last ``size`` :class:`Point` s (one per sample); the rate of a total
at a point is its increase since the previous point divided by the time between them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History", "Point", "Totals"]


class Totals:
    """Per-key totals that never decrease, fed with readings that may reset."""

    def __init__(self) -> None:
        self._last: dict[Any, float] = {}
        self._total: dict[Any, float] = {}

    def update(self, key: Any, reading: float) -> float:
        """Feed the current ``reading`` for ``key``; return its total so far."""
        last = self._last.get(key)
        if last is None or reading < last:
            self._total[key] = self._total.get(key, 0.0) + reading  # first sight, or a reset
        else:
            self._total[key] = self._total[key] + (reading - last)
        self._last[key] = reading
        return self._total[key]

    def add(self, key: Any, amount: float) -> float:
        """Add ``amount`` (>= 0) to ``key``'s total directly; return the total."""
        self._total[key] = self._total.get(key, 0.0) + max(0.0, amount)
        return self._total[key]

    def get(self, key: Any) -> float:
        """The total of ``key`` (0 if never seen)."""
        return self._total.get(key, 0.0)


@dataclass
class Point:
    """Totals and gauges at one instant: ``topics[topic][name]`` and ``server[name]``."""

    time: float
    topics: dict[str, dict[str, float]] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)


# Which values of a point are totals (drawn as rates) rather than gauges (drawn as they are).
TOPIC_TOTALS = ("messages_in", "bytes_in", "messages_out", "published_messages", "published_bytes",
                "published_events")
SERVER_TOTALS = ("in_msgs", "out_msgs", "in_bytes", "out_bytes")


class History:
    """The last ``size`` points, oldest first."""

    def __init__(self, size: int = 600) -> None:
        self.points: deque[Point] = deque(maxlen=size)

    def add(self, point: Point) -> None:
        """Append a point (the oldest falls out when full)."""
        self.points.append(point)

    def rates(self, name: str, topic: str | None = None) -> float:
        """The latest per-second rate of a total (of ``topic``, or of the server if None)."""
        if len(self.points) < 2:
            return 0.0
        a, b = self.points[-2], self.points[-1]
        return _rate(a, b, name, topic)

    def series(self, seconds: float | None = None) -> dict[str, Any]:
        """Time series over the last ``seconds`` (all kept points if None), for drawing::

            {"t": [...], "server": {"in_msgs_rate": [...], "connections": [...], ...},
             "topics": {"jobs": {"messages_in_rate": [...], "lag": [...], ...}, ...}}

        Rates at the first point are 0; a topic absent at a point has 0 there.
        """
        pts = list(self.points)
        if seconds is not None and pts:
            pts = [p for p in pts if p.time >= pts[-1].time - seconds]
        out: dict[str, Any] = {"t": [round(p.time, 3) for p in pts], "server": {}, "topics": {}}
        names = sorted({t for p in pts for t in p.topics})
        for i, p in enumerate(pts):
            prev = pts[i - 1] if i else None
            for k, v in p.server.items():
                key = f"{k}_rate" if k in SERVER_TOTALS else k
                val = (_rate(prev, p, k, None) if prev else 0.0) if k in SERVER_TOTALS else v
                out["server"].setdefault(key, [0.0] * len(pts))[i] = round(val, 3)
            for t in names:
                row = out["topics"].setdefault(t, {})
                for k, v in p.topics.get(t, {}).items():
                    key = f"{k}_rate" if k in TOPIC_TOTALS else k
                    val = (_rate(prev, p, k, t) if prev else 0.0) if k in TOPIC_TOTALS else v
                    row.setdefault(key, [0.0] * len(pts))[i] = round(val, 3)
        return out


def _rate(a: Point, b: Point, name: str, topic: str | None) -> float:
    dt = b.time - a.time
    if dt <= 0:
        return 0.0
    if topic is None:
        va, vb = a.server.get(name), b.server.get(name)
    else:
        va, vb = a.topics.get(topic, {}).get(name), b.topics.get(topic, {}).get(name)
    if vb is None:
        return 0.0
    # Totals never decrease; a topic that just appeared counts from zero.
    return max(0.0, (vb - (va or 0.0)) / dt)
