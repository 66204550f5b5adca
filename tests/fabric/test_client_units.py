"""Fabric pieces that need no broker: subject mapping, delivery policy, batching."""

from __future__ import annotations

import itertools
import random

import pytest

from evfabric.core.errors import ConfigError
from evfabric.core.event import make_event
from evfabric.core.topics import reference_match
from evfabric.fabric.batching import Batcher
from evfabric.fabric.delivery import DeliveryPolicy
from evfabric.fabric.replay import deliver_policy
from evfabric.fabric.subjects import (
    intersect,
    partition_of,
    pattern_filter,
    pattern_reaches,
    stream_name,
    topic_subject,
)


def nats_match(filt: str, subject: str) -> bool:
    f, s = filt.split("."), subject.split(".")
    for i, tok in enumerate(f):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(f) == len(s)


SEGS = ["a", "b", "c"]


def topics(max_len: int = 4) -> list[str]:
    out = []
    for n in range(1, max_len + 1):
        out += [".".join(t) for t in itertools.product(SEGS, repeat=n)]
    return out


@pytest.mark.parametrize("pattern", ["a", "a.?", "a.*", "*.b.*", "?.b", "a.*.c", "*", "?.?.*", "a.b.c"])
def test_filter_contains_pattern_and_exact_flag_is_true(pattern: str) -> None:
    filt, exact = pattern_filter(pattern)
    for t in topics():
        subject = topic_subject(t, 3)
        if reference_match(pattern, t):
            assert nats_match(filt, subject), (pattern, t, filt)
        if exact:
            assert nats_match(filt, subject) == reference_match(pattern, t), (pattern, t, filt)
    assert exact == ("*" not in pattern.split(".")[:-1])


def test_filter_per_partition() -> None:
    assert pattern_filter("a.?", 2) == ("evf.*.2.a.*", True)
    assert pattern_filter("a.*.b") == ("evf.*.*.a.>", False)
    assert pattern_filter("a.?", publisher="alice") == ("evf.alice.*.a.*", True)


def test_subjects_carry_the_publisher() -> None:
    from evfabric.fabric.subjects import parse_subject, stream_subjects, topic_of_subject

    assert topic_subject("a.b") == "evf._.0.a.b"
    assert topic_subject("a.b", 3, "alice") == "evf.alice.3.a.b"
    assert parse_subject("evf.alice.3.a.b") == ("alice", 3, "a.b")
    assert topic_of_subject("evf.alice.3.a.b") == "a.b"
    for bad in ("evf.0.a", "evf.alice.x.a", "other.a.0.b", "evf..0.a", "evf.a.0."):
        assert parse_subject(bad) is None, bad
    assert stream_subjects("jobs") == ["evf.*.*.jobs", "evf.*.*.jobs.>"]


def test_intersect_agrees_with_brute_force() -> None:
    filters = ["evf.*.*.a", "evf.*.*.a.>", "evf.*.*.*.b", "evf.*.1.>", "evf.*.>", "evf.*.2.a.b", "evf.bob.*.a",
               "x.>"]
    subjects = [topic_subject(t, p, who) for t in topics(3) for p in (1, 2) for who in ("_", "bob")]
    for a, b in itertools.product(filters, repeat=2):
        both = intersect(a, b)
        for s in subjects:
            expected = nats_match(a, s) and nats_match(b, s)
            assert (both is not None and nats_match(both, s)) == expected, (a, b, both, s)


def test_pattern_reaches() -> None:
    assert pattern_reaches("jobs.*", "jobs")
    assert pattern_reaches("*.status", "jobs")
    assert pattern_reaches("?.x.y", "jobs")
    assert not pattern_reaches("lab.*", "jobs")
    assert pattern_reaches("jobs.a", "jobs.a")
    assert not pattern_reaches("jobs", "jobs.a")  # nothing below jobs.a is "jobs"
    assert pattern_reaches("a.*.c", "a.b.b")  # a.b.b.c


def test_stream_names_distinct_and_partitions_stable() -> None:
    assert stream_name("a.b") != stream_name("a_b")
    assert {partition_of("k", 8) for _ in range(3)} == {partition_of("k", 8)}
    counts = [0] * 4
    for i in range(400):
        counts[partition_of(f"key{i}", 4)] += 1
    assert all(c > 50 for c in counts)
    assert partition_of("x", 1) == 0


def test_delivery_policy_precedence() -> None:
    pol = DeliveryPolicy()
    ev = make_event("jobs.1.done", {"n": 1}, source="t")
    assert pol.for_event(ev) == "best_effort"
    pol.set_topic("jobs.*", "reliable")
    assert pol.for_event(ev) == "reliable"
    pol.set_topic("jobs.?.done", "best_effort")  # more recent wins
    assert pol.for_event(ev) == "best_effort"
    pol.add_rule("body.n > 0", "reliable")
    assert pol.for_event(ev) == "reliable"
    assert pol.for_event(make_event("jobs.1.done", {"n": 0}, source="t")) == "best_effort"
    with pytest.raises(ConfigError):
        pol.set_topic("x", "sometimes")


def test_replay_positions() -> None:
    assert deliver_policy("earliest")[0].value == "all"
    assert deliver_policy(None)[0].value == "new"
    assert deliver_policy(5) == (deliver_policy(5)[0], {"opt_start_seq": 5})
    assert deliver_policy(1.0e9)[0].value == "by_start_time"
    for bad in ("sometime", 0, True):
        with pytest.raises(ConfigError):
            deliver_policy(bad)


def test_batcher_cuts_by_count_and_bytes_and_completes_ticket() -> None:
    b = Batcher(max_events=10, max_bytes=2000, max_pending=1000)
    events = [make_event("t", {"pad": "x" * random.choice([10, 300])}, source="s") for _ in range(95)]
    ticket = None
    for ev in events:
        ticket, _ = b.add("evf._.0.t", "best_effort", ev)
    batches = b.drain()
    assert all(len(x.events) <= 10 for x in batches)
    assert all(len(x.payload) <= 2000 or len(x.events) == 1 for x in batches)
    from evfabric.wire import decode_message

    got = [e.id for x in batches for e in decode_message(x.subject, x.headers, x.payload)]
    assert got == [e.id for e in events]
    assert b.outstanding == 95 and ticket is not None and not ticket.done()
    for x in batches:
        b.complete(x)
    assert ticket.done() and b.outstanding == 0


def test_batcher_bounded_and_wakes_once() -> None:
    b = Batcher(max_events=100, max_pending=3)
    ev = make_event("t", source="s")
    wakes = [b.add("s", "reliable", ev)[1] for _ in range(3)]
    assert wakes == [True, False, False]
    assert b.add("s", "reliable", ev) == (None, False)
    assert not b.wait_for_space(0.01)
    for x in b.drain():
        b.complete(x)
    assert b.wait_for_space(0.01)
