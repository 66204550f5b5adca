"""Random streams: one per logical process, reproducible, and rewindable when needed.

Stream ``(seed, stream id)`` is a Mersenne Twister (``random.Random``) seeded from
``SeedSequence([seed, stream])``, so a logical process draws the same numbers whatever the
mode, placement or number of workers. Its ``random`` is the generator's own C method: a draw
costs no Python frame and touches one object (per-LP streams are the main cache cost of a
simulation with thousands of LPs).

The optimistic mode must put a stream back where it was before an event. The first
:meth:`Stream.tell` switches the stream to counting draws; :meth:`Stream.seek` restores the
nearest earlier checkpoint (a full generator state, taken every ``CHECKPOINT`` draws) and
skips forward. :meth:`Stream.forget_before` drops checkpoints no rollback can need.
"""

from __future__ import annotations

import math
import random as _random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["CHECKPOINT", "Stream"]

T = TypeVar("T")
CHECKPOINT = 2048  # draws between two saved generator states (a state costs ~10 us to take)
_log = math.log


class Stream:
    """The random stream ``stream`` of run ``seed`` (uniforms in [0, 1)).

    Do not keep ``stream.random`` across events: it is rebound when counting starts.
    """

    __slots__ = ("random", "_mt", "_draw", "_pos", "_ckpt_pos", "_ckpt_state")

    def __init__(self, seed: int, stream: int) -> None:
        if seed < 0 or stream < 0:
            raise ValueError("seed and stream id must be >= 0")
        words = np.random.SeedSequence([seed, stream]).generate_state(4, np.uint32)
        self._mt = _random.Random(int.from_bytes(words.tobytes(), "little"))
        self._draw: Callable[[], float] = self._mt.random
        self.random: Callable[[], float] = self._draw
        self._pos = -1  # -1: not counting

    def _counted(self) -> float:
        self._pos += 1
        return self._draw()

    def exponential(self, mean: float) -> float:
        """An exponential variate with the given mean."""
        return -mean * _log(1.0 - self.random())

    def uniform(self, a: float, b: float) -> float:
        """A uniform variate in [a, b)."""
        return a + (b - a) * self.random()

    def randrange(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return int(self.random() * n)

    def choice(self, seq: Sequence[T]) -> T:
        """A uniformly chosen element of a non-empty sequence."""
        return seq[int(self.random() * len(seq))]

    def tell(self) -> int:
        """The position (draws counted since the first ``tell``); starts counting."""
        pos = self._pos
        if pos < 0:
            pos = self._pos = 0
            self._ckpt_pos, self._ckpt_state = [0], [self._mt.getstate()]
            self.random = self._counted
        elif pos - self._ckpt_pos[-1] >= CHECKPOINT:
            self._ckpt_pos.append(pos)
            self._ckpt_state.append(self._mt.getstate())
        return pos

    def seek(self, position: int) -> None:
        """Go back (or forward) to a position returned by :meth:`tell`."""
        if self._pos < 0:
            raise ValueError("seek needs a position from tell()")
        if position != self._pos:
            k = bisect_right(self._ckpt_pos, position) - 1
            if k < 0:
                raise ValueError(f"position {position} is older than every kept checkpoint")
            if not (self._ckpt_pos[k] <= self._pos < position):  # else just skip forward from here
                self._mt.setstate(self._ckpt_state[k])
                self._pos = self._ckpt_pos[k]
            draw = self._draw
            for _ in range(position - self._pos):
                draw()
            self._pos = position

    def forget_before(self, position: int) -> None:
        """No seek will go below ``position``: drop the checkpoints that only served those."""
        if self._pos < 0:
            return
        k = bisect_right(self._ckpt_pos, position) - 1
        if k > 0:
            del self._ckpt_pos[:k]
            del self._ckpt_state[:k]

    def __getstate__(self) -> Any:  # pragma: no cover - streams are built where they are used
        raise TypeError("a Stream is built on the processing element that uses it")
