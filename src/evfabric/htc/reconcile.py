"""Noticing lost best-effort messages from per-worker sequence numbers.

Each worker numbers its task and metric messages 1, 2, 3... and its heartbeats repeat the last
number sent. Messages of one worker arrive in order (one publisher, one path), so a
:class:`SeqTracker` knows the highest number that exists and which ones it has accounted for
(received, or covered by a snapshot). Anything missing below the highest is lost: the
coordinator then asks that worker for a snapshot, which covers every number up to the one it
states, and merges it (merging is monotone, so news that arrives around the snapshot is
harmless).
"""

from __future__ import annotations

__all__ = ["SeqTracker"]


class SeqTracker:
    """Sequence bookkeeping for one worker."""

    __slots__ = ("_above", "highest", "lost_noticed", "watermark")

    def __init__(self) -> None:
        self.watermark = 0  # every number <= watermark is accounted for
        self.highest = 0  # the highest number known to exist
        self._above: set[int] = set()  # received numbers > watermark
        self.lost_noticed = 0  # times a gap was found

    def receive(self, seq: int) -> bool:
        """Note message ``seq``; False if it was already accounted for (skip it)."""
        if seq <= self.watermark or seq in self._above:
            return False
        had_gap = self.gap
        if seq == self.watermark + 1:
            self.watermark = seq
            self._advance()
        else:
            self._above.add(seq)
        if seq > self.highest:
            self.highest = seq
        if self.gap and not had_gap:
            self.lost_noticed += 1
        return True

    def announce(self, seq: int) -> None:
        """A heartbeat says messages up to ``seq`` were sent."""
        if seq > self.highest:
            had_gap = self.gap
            self.highest = seq
            if self.gap and not had_gap:
                self.lost_noticed += 1

    def covered(self, seq: int) -> None:
        """A snapshot accounts for every number up to ``seq``."""
        if seq > self.watermark:
            self.watermark = seq
            self._above = {s for s in self._above if s > seq}
            self._advance()
        if seq > self.highest:
            self.highest = seq

    def _advance(self) -> None:
        above = self._above
        while self.watermark + 1 in above:
            above.discard(self.watermark + 1)
            self.watermark += 1

    @property
    def gap(self) -> bool:
        """Some message up to :attr:`highest` is neither received nor covered."""
        return self.watermark < self.highest
