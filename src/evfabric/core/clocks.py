"""Clocks: the wall clock as an injectable object (TTLs, retention, replay by time), and logical
clocks: Lamport scalars (the ``seq`` header) and vector clocks (causal order).

Code that asks "has this TTL run out?" takes a :class:`Clock` (default :data:`SYSTEM_CLOCK`), so
a test passes a :class:`ManualClock` and moves it with ``advance()`` instead of sleeping.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "LamportClock", "ManualClock", "SystemClock", "VectorClock"]


@runtime_checkable
class Clock(Protocol):
    """A wall clock: ``time()`` is seconds since the epoch."""

    def time(self) -> float:
        """Now, in seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock (``time.time``)."""

    __slots__ = ()

    def time(self) -> float:
        """Now, from the system clock."""
        return _time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told: ``advance(seconds)`` or ``set(t)``. Thread-safe.

    It starts at ``start`` (default: the real time now, so events stamped by the system clock
    and compared against it stay coherent).
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float | None = None) -> None:
        self._now = _time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        """The clock's current reading."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); return the new reading."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; advance({seconds}) is negative")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` (seconds since the epoch; may go back, as a wall clock can)."""
        with self._lock:
            self._now = float(now)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


class LamportClock:
    """A thread-safe Lamport clock: ``tick()`` before a send, ``observe(t)`` on a receive."""

    __slots__ = ("_lock", "_time")

    def __init__(self, start: int = 0) -> None:
        self._time = start
        self._lock = threading.Lock()

    @property
    def time(self) -> int:
        """The current value (the last one handed out)."""
        return self._time

    def tick(self) -> int:
        """Advance by one and return the new value (stamp an outgoing event with it)."""
        with self._lock:
            self._time += 1
            return self._time

    def observe(self, received: int) -> int:
        """Merge a received stamp: time = max(time, received) + 1; return the new value."""
        with self._lock:
            self._time = max(self._time, received) + 1
            return self._time


class VectorClock:
    """A vector clock over named processes; immutable operations return new clocks.

    ``a <= b`` means a happened before or equals b; ``a.concurrent(b)`` when neither precedes.
    """

    __slots__ = ("_v",)

    def __init__(self, entries: Mapping[str, int] | None = None) -> None:
        self._v: dict[str, int] = {k: v for k, v in (entries or {}).items() if v}

    def as_dict(self) -> dict[str, int]:
        """The non-zero entries."""
        return dict(self._v)

    def __getitem__(self, name: str) -> int:
        return self._v.get(name, 0)

    def tick(self, name: str) -> VectorClock:
        """A copy with ``name``'s entry advanced by one."""
        v = dict(self._v)
        v[name] = v.get(name, 0) + 1
        return VectorClock(v)

    def merge(self, other: VectorClock) -> VectorClock:
        """The entry-wise maximum of the two clocks."""
        v = dict(self._v)
        for k, n in other._v.items():
            if n > v.get(k, 0):
                v[k] = n
        return VectorClock(v)

    def __le__(self, other: VectorClock) -> bool:
        return all(n <= other._v.get(k, 0) for k, n in self._v.items())

    def __lt__(self, other: VectorClock) -> bool:
        return self <= other and self != other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorClock) and self._v == other._v

    def __hash__(self) -> int:
        return hash(frozenset(self._v.items()))

    def concurrent(self, other: VectorClock) -> bool:
        """True when neither clock precedes the other."""
        return not (self <= other) and not (other <= self)

    def __repr__(self) -> str:
        return f"VectorClock({self._v!r})"
