"""The coordinator's status merges news monotonically; the freshness analysis on known data."""

import math

import numpy as np
import pytest

from evfabric.core.errors import ConfigError
from evfabric.htc import DONE, FAILED, RUNNING, JobStatus, plan_assignments, summarise, timeline


def test_status_only_moves_forward_and_counts_per_node():
    st = JobStatus(plan_assignments(6, ["a", "b"], 3))  # a: 0,1,2  b: 3,4,5
    assert st.advance(0, RUNNING, 1.0) and st.advance(0, DONE, 2.0)
    assert not st.advance(0, RUNNING, 3.0)  # late news of the start
    assert not st.advance(0, FAILED, 3.0)  # finished is final
    moved = st.apply_snapshot("b", bytes([DONE, RUNNING, 0]), 4.0)
    assert moved == 2 and st.totals() == {"queued": 3, "running": 1, "done": 2, "failed": 0}
    assert st.node_states() == {"a": [2, 0, 1, 0], "b": [1, 1, 1, 0]}
    assert st.learned_run[0] == 1.0 and st.learned_end[0] == 2.0 and math.isinf(st.learned_run[3])
    assert st.apply_snapshot("b", bytes([RUNNING, RUNNING, 0]), 5.0) == 0  # an old snapshot changes nothing
    assert not st.complete
    with pytest.raises(ConfigError):
        st.apply_snapshot("a", bytes(2), 6.0)


def test_timeline_staleness_unseen_and_time_to_accurate_status():
    truth_run = np.array([0.0, 1.0])
    truth_end = np.array([2.0, 3.0])
    learned_run = np.array([0.5, math.inf])  # the start of task 1 was never reported...
    learned_end = np.array([2.2, 3.1])  # ...only its end
    tl = timeline(truth_run, truth_end, learned_run, learned_end, origin=0.0, samples=32)
    i = int(np.argmin(abs(tl.times - 1.5)))
    assert tl.unseen[i] == 1 and tl.staleness[i] == pytest.approx(0.5)  # start of task 1, 0.5 s old
    assert tl.tta[i] == pytest.approx(1.6)  # known only at 3.1
    j = int(np.argmin(abs(tl.times - 0.2)))
    assert tl.staleness[j] == pytest.approx(0.2) and tl.tta[j] == pytest.approx(0.3)
    assert tl.known_final == pytest.approx(3.1) and tl.job_end == pytest.approx(3.0)
    s = summarise(tl)
    assert s["final_status_s"] == pytest.approx(0.1) and s["staleness_max_s"] > 0.5
