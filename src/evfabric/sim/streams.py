"""Random streams: one per logical process, reproducible, and cheap to rewind.

A stream is a fixed sequence of uniform numbers determined by ``(seed, stream id)``: NumPy's
PCG64 seeded with ``SeedSequence([seed, stream])``, read in small blocks. Its state is just its
position, so the optimistic mode saves and restores it for the price of an int (going back to
an earlier block jumps the generator there with ``advance``), and a logical process draws the
same numbers whatever the mode, placement or number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import TypeVar

import numpy as np

__all__ = ["Stream"]

T = TypeVar("T")
BLOCK = 128  # small: the blocks of many thousands of LPs stay cache-friendly
_log = math.log


class Stream:
    """The random stream ``stream`` of run ``seed`` (uniforms in [0, 1)).

    ``random`` is a C-level callable (a chain of per-block list iterators), so a draw costs no
    Python frame; the position is read back from the current block's iterator.
    """

    __slots__ = ("random", "_start", "_bits", "_gen", "_loaded", "_block", "_it")

    def __init__(self, seed: int, stream: int) -> None:
        if seed < 0 or stream < 0:
            raise ValueError("seed and stream id must be >= 0")
        self._bits = np.random.PCG64(np.random.SeedSequence([seed, stream]))
        self._start = self._bits.state
        self._gen = np.random.Generator(self._bits)
        self._loaded = -1  # the last block drawn from the bit generator
        self.seek(0)

    def _fill(self, block: int) -> list[float]:
        if block != self._loaded + 1:  # not the next block: jump (one 64-bit draw per double)
            self._bits.state = self._start
            self._bits.advance(block * BLOCK)
        self._loaded = block
        return self._gen.random(BLOCK).tolist()

    def _blocks(self, block: int) -> Iterator[Iterator[float]]:
        while True:
            it = iter(self._fill(block))
            self._it, self._block = it, block
            yield it
            block += 1

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
        return self._block * BLOCK + BLOCK - self._it.__length_hint__()  # type: ignore[attr-defined]

    def seek(self, position: int) -> None:
        """Go back (or forward) to a position returned by :meth:`tell`."""
        block, i = divmod(position, BLOCK)
        blocks = self._blocks(block)
        first = next(blocks)
        first.__setstate__(i)  # type: ignore[attr-defined]
        self.random: Callable[[], float] = chain.from_iterable(chain((first,), blocks)).__next__
