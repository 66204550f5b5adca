"""Random streams: one per logical process, reproducible, and rewindable when needed.

Stream ``(seed, stream id)`` is a Mersenne Twister (``random.Random``) seeded from
``SeedSequence([seed, stream])``, so a logical process draws the same numbers whatever the
mode, placement or number of workers. Its ``random`` is the generator's own C method: a draw
costs no Python frame and touches one object (per-LP streams are the main cache cost of a
simulation with thousands of LPs).

The optimistic mode must put a stream back where it was before an event. The first
:meth:`Stream.tell` switches the stream to *blocks*: the generator's next numbers are drawn
``BLOCK`` at a time into lists that are kept while a rollback may need them, and ``random``
becomes a C-level iterator over them. The position is the block and the offset in it;
:meth:`Stream.seek` re-reads kept blocks; :meth:`Stream.forget_before` frees the old ones.
The numbers are the same in both forms.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any, TypeVar

import numpy as np

from evfabric.core.errors import ConfigError

__all__ = ["BLOCK", "Stream"]

T = TypeVar("T")
BLOCK = 256  # numbers drawn at a time once a stream must be rewindable
_log = math.log


class Stream:
    """The random stream ``stream`` of run ``seed`` (uniforms in [0, 1)).

    Do not keep ``stream.random`` across events: it is rebound when the stream switches to
    blocks (first :meth:`tell`) and on :meth:`seek`.
    """

    __slots__ = ("_block", "_first", "_it", "_kept", "_mt", "random")

    def __init__(self, seed: int, stream: int) -> None:
        if seed < 0 or stream < 0:
            raise ConfigError(f"seed and stream id must be >= 0, not {seed}, {stream}")
        words = np.random.SeedSequence([seed, stream]).generate_state(4, np.uint32)
        self._mt = _random.Random(int.from_bytes(words.tobytes(), "little"))
        self.random: Callable[[], float] = self._mt.random
        self._kept: list[list[float]] | None = None  # blocks _first, _first + 1, ... (block mode)
        self._first = 0

    def _blocks(self, block: int) -> Iterator[Iterator[float]]:
        kept, draw = self._kept, self._mt.random
        assert kept is not None
        while True:
            k = block - self._first
            if k == len(kept):  # past the last block drawn: draw the next one
                kept.append([draw() for _ in range(BLOCK)])
            it = iter(kept[k])
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
        """The position (draws since the first ``tell``, which switches to blocks)."""
        if self._kept is None:
            self._kept = []
            self.seek(0)
        return self._block * BLOCK + BLOCK - self._it.__length_hint__()  # type: ignore[attr-defined]

    def seek(self, position: int) -> None:
        """Go back (or forward) to a position returned by :meth:`tell`."""
        if self._kept is None:
            raise ConfigError("seek needs a position from tell()")
        block, i = divmod(position, BLOCK)
        if block < self._first:
            raise ConfigError(f"position {position} was forgotten (forget_before)")
        blocks = self._blocks(block)
        first = next(blocks)
        first.__setstate__(i)  # type: ignore[attr-defined]
        self.random = chain.from_iterable(chain((first,), blocks)).__next__

    def forget_before(self, position: int) -> None:
        """No seek will go below ``position``: free the blocks only those could need."""
        if self._kept is None:
            return
        drop = min(position // BLOCK, self._block) - self._first
        if drop > 0:
            del self._kept[:drop]
            self._first += drop

    def __getstate__(self) -> Any:  # pragma: no cover - streams are built where they are used
        raise TypeError("a Stream is built on the processing element that uses it")
