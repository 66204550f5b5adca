"""Per-LP random streams: reproducible, independent, rewindable."""

import statistics

import numpy as np
import pytest

from evfabric.sim import Stream
from evfabric.sim.streams import BLOCK


def test_stream_is_pcg64_of_seed_and_stream_id():
    s = Stream(7, 3)
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, 3]))).random(3 * BLOCK + 5).tolist()
    assert [s.random() for _ in range(len(ref))] == ref


def test_streams_differ_by_seed_and_by_id():
    a = [Stream(1, 0).random() for _ in range(3)]
    assert a != [Stream(2, 0).random() for _ in range(3)]
    assert a != [Stream(1, 1).random() for _ in range(3)]


@pytest.mark.parametrize("back_to", [0, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7])
def test_tell_and_seek_rewind_exactly(back_to):
    s = Stream(11, 4)
    drawn = [s.random() for _ in range(3 * BLOCK)]
    assert s.tell() == 3 * BLOCK
    s.seek(back_to)
    assert s.tell() == back_to
    assert [s.random() for _ in range(3 * BLOCK - back_to)] == drawn[back_to:]
    s.seek(BLOCK + 3)  # forward too
    assert s.random() == drawn[BLOCK + 3]


def test_distributions_have_the_right_means():
    s = Stream(5, 5)
    assert statistics.fmean(s.exponential(2.0) for _ in range(20000)) == pytest.approx(2.0, rel=0.03)
    assert statistics.fmean(s.uniform(1.0, 3.0) for _ in range(20000)) == pytest.approx(2.0, rel=0.02)
    draws = [s.randrange(4) for _ in range(4000)]
    assert set(draws) == {0, 1, 2, 3}
    assert s.choice("xyz") in "xyz"


def test_bad_seed_is_refused():
    with pytest.raises(ValueError):
        Stream(-1, 0)
