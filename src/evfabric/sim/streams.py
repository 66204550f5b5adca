"""Random streams: one per logical process, reproducible, and cheap to rewind.

A stream is a fixed sequence of uniform numbers determined by ``(seed, stream id)``, produced
in blocks by NumPy's PCG64 from ``SeedSequence([seed, stream, block])``. Its state is just its
position, so the optimistic mode saves and restores it for the price of an int, and a logical
process draws the same numbers whatever the mode, placement or number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = ["Stream"]

T = TypeVar("T")
BLOCK = 4096
_log = math.log


class Stream:
    """The random stream ``stream`` of run ``seed`` (uniforms in [0, 1))."""

    __slots__ = ("_seed", "_stream", "_block", "_buf", "_i")

    def __init__(self, seed: int, stream: int) -> None:
        if seed < 0 or stream < 0:
            raise ValueError("seed and stream id must be >= 0")
        self._seed = seed
        self._stream = stream
        self._load(0)

    def _load(self, block: int) -> None:
        bits = np.random.PCG64(np.random.SeedSequence([self._seed, self._stream, block]))
        self._buf: list[float] = np.random.Generator(bits).random(BLOCK).tolist()
        self._block = block
        self._i = 0

    def random(self) -> float:
        """The next uniform number in [0, 1)."""
        i = self._i
        if i == BLOCK:
            self._load(self._block + 1)
            i = 0
        self._i = i + 1
        return self._buf[i]

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
        """The position: how many numbers were drawn so far."""
        return self._block * BLOCK + self._i

    def seek(self, position: int) -> None:
        """Go back (or forward) to a position returned by :meth:`tell`."""
        block, i = divmod(position, BLOCK)
        if block != self._block:
            self._load(block)
        self._i = i
