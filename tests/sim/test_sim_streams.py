"""Per-LP random streams: reproducible, independent, rewindable."""

import random
import statistics

import numpy as np
import pytest

from evfabric.sim import Stream
from evfabric.sim.streams import BLOCK


def test_stream_is_a_mersenne_twister_seeded_by_seed_sequence():
    s = Stream(7, 3)
    words = np.random.SeedSequence([7, 3]).generate_state(4, np.uint32)
    ref = random.Random(int.from_bytes(words.tobytes(), "little"))
    assert [s.random() for _ in range(1000)] == [ref.random() for _ in range(1000)]


def test_streams_differ_by_seed_and_by_id():
    a = [Stream(1, 0).random() for _ in range(3)]
    assert a != [Stream(2, 0).random() for _ in range(3)]
    assert a != [Stream(1, 1).random() for _ in range(3)]


@pytest.mark.parametrize("back_to", [0, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7])
def test_tell_and_seek_rewind_exactly(back_to):
    s, ref = Stream(11, 4), Stream(11, 4)
    drawn = [ref.random() for _ in range(4 * BLOCK)]
    assert s.tell() == 0  # counting starts here
    for _ in range(3 * BLOCK // 100):
        s.tell()  # the engine tells before every event: checkpoints are taken along the way
        for _ in range(100):
            s.random()
    end = s.tell()
    s.seek(back_to)
    assert s.tell() == back_to
    assert [s.random() for _ in range(end - back_to)] == drawn[back_to:end]
    s.seek(BLOCK + 3)  # forward too
    assert s.random() == drawn[BLOCK + 3]


def test_forget_before_keeps_what_later_seeks_need():
    s, ref = Stream(3, 3), Stream(3, 3)
    drawn = [ref.random() for _ in range(6 * BLOCK)]
    for _ in range(5 * BLOCK // 50):
        s.tell()
        for _ in range(50):
            s.random()
    s.forget_before(3 * BLOCK + 10)
    s.seek(3 * BLOCK + 10)
    assert s.random() == drawn[3 * BLOCK + 10]
    with pytest.raises(ValueError):
        s.seek(5)


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
