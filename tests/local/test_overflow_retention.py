"""Bounded queues with each overflow policy, and retention with a TTL."""

import threading
import time

import pytest

from evfabric import EventService
from evfabric.core.clocks import ManualClock
from evfabric.core.errors import QueueFull


def bodies(events):
    return [e.body["i"] for e in events]


def test_drop_oldest_is_a_circular_buffer():
    svc = EventService(queue_size=3, overflow="drop_oldest")
    got, drops = [], []
    svc.subscribe("a", listener=got.append)
    svc.subscribe("cca.events.dropped", listener=drops.append)
    for i in range(10):
        svc.publish("a", {"i": i})
    svc.process_events()
    assert bodies(got) == [7, 8, 9]
    assert svc.stats.dropped == 7
    assert drops[0].body == {"count": 7, "policy": "drop_oldest", "topics": {"a": 7}}


def test_drop_newest_keeps_the_first():
    svc = EventService(queue_size=3, overflow="drop_newest")
    got = []
    svc.subscribe("a", listener=got.append)
    for i in range(10):
        svc.publish("a", {"i": i})
    svc.process_events()
    assert bodies(got) == [0, 1, 2] and svc.stats.dropped == 7


def test_raise_policy():
    svc = EventService(queue_size=2, overflow="raise")
    svc.publish("a")
    svc.publish("a")
    with pytest.raises(QueueFull, match="'raise'"):
        svc.publish("a")
    assert svc.process_events() == 0  # nobody subscribed: nothing to call, queue drained
    svc.publish("a")


def test_block_in_sync_mode_flushes_instead_of_losing():
    svc = EventService(queue_size=4, overflow="block")
    got = []
    svc.subscribe("a", listener=got.append)
    for i in range(50):
        svc.publish("a", {"i": i})
    svc.process_events()
    assert bodies(got) == list(range(50)) and svc.stats.dropped == 0


def test_block_in_threads_mode_waits_for_room():
    gate = threading.Event()
    svc = EventService(mode="threads", workers=1, max_workers=1, queue_size=5, overflow="block")
    got = []

    def slow(ev):
        gate.wait(5)
        got.append(ev.body["i"])

    svc.subscribe("a", listener=slow)
    done = threading.Event()

    def produce():
        for i in range(30):
            svc.publish("a", {"i": i})
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    deadline = time.monotonic() + 10
    while svc.stats.pending < 5 and time.monotonic() < deadline:  # wait until the bound is reached
        time.sleep(0.005)
    assert svc.stats.pending >= 5
    assert not done.is_set()  # the listener is gated: the producer is held back by the bound
    assert svc.stats.pending <= 5 + ThreadPoolBatch()
    gate.set()
    t.join(10)
    svc.process_events(timeout=10)
    assert got == list(range(30)) and svc.stats.dropped == 0
    svc.close()


def ThreadPoolBatch():
    from evfabric.local.dispatch import ThreadPoolDispatcher

    return ThreadPoolDispatcher.BATCH


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_drop_policies_in_threads_mode_count_every_loss(policy):
    gate = threading.Event()
    svc = EventService(mode="threads", workers=1, max_workers=1, queue_size=10, overflow=policy)
    got = []
    svc.subscribe("a", listener=lambda e: (gate.wait(5), got.append(e.body["i"])))
    for i in range(200):
        svc.publish("a", {"i": i})
    gate.set()
    svc.process_events(timeout=10)
    assert len(got) + svc.stats.dropped == 200
    assert got == sorted(got)
    svc.close()


def test_retention_lets_late_subscribers_catch_up():
    svc = EventService()
    svc.retain("runs.*", ttl=60, max_events=3)
    for i in range(5):
        svc.publish("runs.r1", {"i": i})
    svc.publish("other", {"i": 99})
    svc.process_events()
    assert bodies(svc.recent("runs.*")) == [2, 3, 4]
    late = []
    svc.subscribe("runs.?", listener=late.append, replay=True)
    svc.publish("runs.r1", {"i": 5})
    svc.process_events()
    assert bodies(late) == [2, 3, 4, 5]


def test_retention_expires_by_ttl_and_event_ttl():
    clock = ManualClock()
    svc = EventService(clock=clock)
    svc.retain("a", ttl=50)
    svc.publish("a", {"i": 1})
    svc.publish("a", {"i": 2}, ttl=10)
    assert bodies(svc.recent("a")) == [1, 2]
    clock.advance(20)
    assert bodies(svc.recent("a")) == [1]
    clock.advance(50)
    assert svc.recent("a") == []


def test_sync_bound_counts_handed_over_batches_on_the_publish_fast_path():
    # publish appends to the dispatcher's lane while it has room; a batch handed to one
    # subscription takes its events' room too, so the bound still counts events, not queue items
    svc = EventService(queue_size=4, overflow="drop_newest")
    got = []
    sub = svc.subscribe("a.*", listener=lambda ev: got.append(ev.body["i"]))
    batch = [svc.build_event("a.x", {"i": -k}, {}) for k in (1, 2, 3)]
    svc.hand_over(batch, sub)  # 3 events in one queue item
    for i in range(3):
        svc.publish("a.x", {"i": i})  # room for one more only
    assert svc.stats.pending == 4
    svc.process_events()
    assert got == [-1, -2, -3, 0]
    assert svc.stats.dropped == 2
    for i in range(4):  # the batch is gone: the whole bound is free again
        svc.publish("a.x", {"i": i})
    assert svc.stats.pending == 4
