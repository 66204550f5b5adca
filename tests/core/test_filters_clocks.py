"""CEL filters and logical clocks."""

import threading

import pytest

from evfabric.core.clocks import LamportClock, VectorClock
from evfabric.core.errors import InvalidFilter
from evfabric.core.event import make_event
from evfabric.core.filters import Filter


def test_filter_sees_header_and_body():
    ev = make_event("lab.t", {"temperature": 31.5, "tags": ["hot"]}, source="probe", key="k1", site="ornl")
    assert Filter('topic.startsWith("lab.") && body.temperature > 30.0')(ev)
    assert Filter('source == "probe" && key == "k1" && header.site == "ornl"')(ev)
    assert Filter('"hot" in body.tags')(ev)
    assert not Filter("body.temperature < 0.0")(ev)


def test_filter_errors_do_not_match_and_are_counted():
    f = Filter("body.missing > 1")
    assert f(make_event("a", {}, source="s")) is False
    assert f.errors == 1 and "missing" in f.last_error
    g = Filter("body.x")
    assert g(make_event("a", {"x": 3}, source="s")) is False and "not a bool" in g.last_error


@pytest.mark.parametrize("bad", ["body.x >", "", "((", 5])
def test_bad_filter_refused(bad):
    with pytest.raises(InvalidFilter):
        Filter(bad)


def test_lamport_clock():
    c = LamportClock()
    assert c.tick() == 1
    assert c.observe(10) == 11
    assert c.tick() == 12
    threads = [threading.Thread(target=lambda: [c.tick() for _ in range(1000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.time == 4012


def test_vector_clock_order():
    a = VectorClock().tick("p")
    b = a.tick("q")
    c = a.tick("p")
    assert a < b and a <= b and not b <= a
    assert b.concurrent(c)
    m = b.merge(c)
    assert b <= m and c <= m and m["p"] == 2 and m["q"] == 1


def test_importing_evfabric_does_not_load_cel() -> None:
    """The cel package imports its command line (prompt_toolkit) on import: 0.15 s of every
    process's start. It loads with the first filter instead."""
    import subprocess
    import sys

    code = ("import sys, evfabric; assert 'cel' not in sys.modules, 'loaded at import';"
            "evfabric.EventService().subscribe('a.*', filter='body.x > 1'); assert 'cel' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
