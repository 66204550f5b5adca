"""Output analysis helpers (warm-up, time averages, confidence intervals) and the short model API."""

import copy
import statistics

import pytest

from evfabric.core.errors import ConfigError
from evfabric.sim import LP, Model, Tally, TimeAverage, confidence_interval, run
from evfabric.sim.estimate import t_quantile


def test_tally_leaves_out_the_warm_up_and_matches_statistics():
    t = Tally(warmup=10.0)
    for at, v in [(1.0, 100.0), (9.9, 50.0), (10.0, 1.0), (12.0, 2.0), (20.0, 6.0)]:
        t.add(v, at=at)
    assert t.count == 3
    assert t.mean == pytest.approx(3.0)
    assert t.variance == pytest.approx(statistics.variance([1.0, 2.0, 6.0]))
    c = copy.deepcopy(t)
    c.add(100.0, at=30.0)
    assert (t.count, c.count) == (3, 4)


def test_time_average_integrates_the_level_after_the_warm_up():
    q = TimeAverage(warmup=10.0)
    q.set(5, at=2.0)  # 5 from t=2, but only [10, ...) counts
    q.set(1, at=14.0)  # 5 over [10, 14): area 20
    q.set(3, at=16.0)  # 1 over [14, 16): area 2
    assert q.mean(20.0) == pytest.approx((20 + 2 + 3 * 4) / 10)
    assert TimeAverage(warmup=5.0).mean(5.0) != TimeAverage(warmup=5.0).mean(5.0)  # nan


def test_confidence_interval_is_student_t():
    xs = [9.8, 10.2, 10.1, 9.9, 10.0]
    ci = confidence_interval(xs)
    assert ci.mean == pytest.approx(10.0)
    assert ci.half_width == pytest.approx(2.776 * statistics.stdev(xs) / 5**0.5)
    assert ci.contains(10.1) and not ci.contains(10.3)
    assert t_quantile(1000, 0.95) == pytest.approx(1.9623, abs=1e-3)
    with pytest.raises(ConfigError):
        confidence_interval([1.0])


class Counter(LP):
    def __init__(self):
        self.limit, self.count = self.model.limit, 0  # the model's parameters, already in __init__

    def init(self):
        self.send(self.id, "tick", None, self.rng.exponential(1.0))

    def handle(self, kind, data):
        self.count += 1
        if self.count < self.limit:
            self.init()

    def finish(self):
        return {f"count{self.id}": self.count}


class Counters(Model):
    limit, seed, lps = 5, 1, (Counter, Counter)


def test_a_model_can_list_its_lp_classes_and_take_parameters():
    assert Counters.size == 2
    assert run(Counters(limit=7)).results == {"count0": 7, "count1": 7}
    with pytest.raises(ConfigError, match="Counters has no parameter 'limt'"):
        Counters(limt=3)
