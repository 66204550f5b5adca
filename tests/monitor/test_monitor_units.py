"""Pure pieces of the monitor: monotonic totals, history rates, subject mapping, batch lengths."""

from __future__ import annotations

import msgspec
import pytest

from evfabric.core.errors import ConfigError
from evfabric.monitor import metrics
from evfabric.monitor.history import History, Point, Totals
from evfabric.monitor.sample import subject_pattern
from evfabric.monitor.tap import batch_length


def test_totals_survive_resets() -> None:
    t = Totals()
    assert t.update("c", 5) == 5
    assert t.update("c", 8) == 8
    assert t.update("c", 2) == 10  # the consumer was recreated: its 2 new deliveries add up
    assert t.update("c", 2) == 10
    assert t.add("b", -3) == 0  # totals never go down


def test_history_rates_and_series() -> None:
    h = History(size=3)
    for i, total in enumerate([0, 10, 30, 60]):
        h.add(Point(100.0 + 2 * i, topics={"jobs": {"messages_in": total, "lag": 7}}, server={"in_msgs": total}))
    assert len(h.points) == 3  # the ring buffer dropped the oldest
    assert h.rates("messages_in", "jobs") == 15.0
    assert h.rates("in_msgs") == 15.0
    s = h.series()
    assert s["t"] == [102.0, 104.0, 106.0]
    assert s["topics"]["jobs"]["messages_in_rate"] == [0.0, 10.0, 15.0]
    assert s["topics"]["jobs"]["lag"] == [7, 7, 7]
    assert h.series(seconds=2)["t"] == [104.0, 106.0]


@pytest.mark.parametrize("subject,pattern", [
    ("evf.*.*.jobs.>", "jobs.*"), ("evf._.0.jobs", "jobs"), ("evf.*.3.a.*.c", "a.?.c"),
    ("_INBOX.abc.*", None), ("evf.a.x.jobs", None), ("evf.0.jobs", None), ("other.a.0.jobs", None),
])
def test_subject_pattern(subject: str, pattern: str | None) -> None:
    assert subject_pattern(subject) == pattern


@pytest.mark.parametrize("n", [0, 1, 15, 16, 1000, 70000])
def test_batch_length_reads_the_array_header(n: int) -> None:
    assert batch_length(msgspec.msgpack.encode([{"x": i} for i in range(n)])) == n


def test_batch_length_of_garbage_is_zero() -> None:
    assert batch_length(b"") == 0
    assert batch_length(b"hello") == 0


def test_record_trigger_refuses_unknown_status() -> None:
    with pytest.raises(ConfigError, match="status"):
        metrics.record_trigger("t", status="maybe")
