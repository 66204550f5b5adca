"""Adaptive throttling of optimism (Time Warp): window and batch from observed rollbacks.

Unbounded optimism thrashes when events between processing elements (PEs) come with little or
no lookahead: a PE races ahead, every straggler undoes most of what it did, and the anti-
messages undo its peers' work in turn. Like ROSS's optimism controls, each PE bounds, per GVT
round, how far beyond GVT it may go in simulated time (the *window*) and how many events it may
handle (the *batch*), and, by default, adapts both to what it observes. Rollbacks show up a
round after the work they undo (stragglers travel with the next exchange), so the PE keeps
decaying sums of its handled and rolled-back events (each round halves the past): when more
than ``HIGH`` of the handled events were rolled back it halves the window (the first cut
halves the span of simulated time the round covered, so it needs no scale) and the batch;
below ``LOW`` it widens them by ``GROW`` per round, up to the caps the caller gave. A cut is
not repeated in the round right after it (that round still brings the old round's
stragglers), and the batch starts at ``START_BATCH`` (nothing is known yet about the model). Events at GVT itself
are always allowed, so a window of 0 still progresses (one zero-delay hop per round).

Each PE decides for itself; committed results do not depend on the window or the batch, only
the amount of undone work and the number of rounds do.
"""

from __future__ import annotations

import math

from evfabric.core.errors import ConfigError

__all__ = ["DEFAULT_BATCH", "Throttle"]

DEFAULT_BATCH = 1024  # events per PE per round at most
MIN_BATCH = 16
START_BATCH = 64
HIGH, LOW = 0.2, 0.05  # share of recently handled events rolled back: throttle / relax
GROW = 1.25
INF = math.inf


class Throttle:
    """One PE's optimism bounds: ``limit(gvt)`` and ``batch`` for the next round.

    ``batch`` and ``window`` are the caps (defaults: 1024 events, unbounded); with
    ``adaptive=False`` they are used as given, every round.
    """

    def __init__(self, batch: int | None = None, window: float | None = None, adaptive: bool = True) -> None:
        self.max_batch = DEFAULT_BATCH if batch is None else int(batch)
        self.max_window = INF if window is None else float(window)
        if self.max_batch < 1 or not self.max_window >= 0:
            raise ConfigError(f"optimistic mode needs batch >= 1 and window >= 0, not {batch}, {window}")
        self.adaptive = adaptive
        self.batch = min(START_BATCH, self.max_batch) if adaptive else self.max_batch
        self.window = self.max_window
        self._cooling = False  # the round after a cut
        self.cuts = 0  # rounds that throttled (for the statistics)
        self._handled = self._undone = 0.0  # decaying sums

    def limit(self, gvt: float, end: float) -> float:
        """The time stamp bound (exclusive) of the next round: events up to ``gvt + window``."""
        if self.window == INF:
            return end
        return min(end, math.nextafter(gvt + self.window, INF))

    def observe(self, gvt: float, reached: float, handled: int, rolled_back: int) -> None:
        """After a round that started at ``gvt``, handled ``handled`` events up to time stamp
        ``reached`` and saw ``rolled_back`` of this PE's events undone: adapt the bounds."""
        if not self.adaptive:
            return
        self._handled = 0.5 * self._handled + handled
        self._undone = 0.5 * self._undone + rolled_back
        if self._undone > HIGH * max(self._handled, 1.0):
            if self._cooling:
                self._cooling = False
                return
            self._cooling = True
            if math.isfinite(self.window):
                self.window *= 0.5
            elif math.isfinite(gvt) and reached > gvt:  # first cut: half the span the round covered
                self.window = 0.5 * (reached - gvt)
            self.batch = max(MIN_BATCH, self.batch // 2)
            self.cuts += 1
            return
        self._cooling = False
        if self._undone < LOW * self._handled:
            if self.window < self.max_window:
                self.window = min(self.max_window, max(GROW * self.window, 1e-9))
            self.batch = min(self.max_batch, max(self.batch + 1, int(GROW * self.batch)))
