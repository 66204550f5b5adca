"""The shared listener pool without a broker: per-topic order, isolation, draining, sizing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from _fabric_helpers import wait_until

from evfabric.fabric.dispatch_pool import DispatchPool, PooledDispatcher
from evfabric.local.service import EventService


def service(pool: DispatchPool, name: str) -> EventService:
    return EventService(source=name, dispatcher=lambda d, cap, ov: PooledDispatcher(d, cap, ov, pool))


@pytest.mark.timeout(60)
def test_order_per_topic_holds_across_services_sharing_the_pool() -> None:
    pool = DispatchPool(max_workers=4, idle_timeout=0.2)
    services = [service(pool, f"s{i}") for i in range(5)]
    seen: dict[tuple[int, str], list[int]] = {}
    for i, svc in enumerate(services):
        for topic in ("a.x", "a.y"):
            key = (i, topic)
            seen[key] = []
            svc.subscribe(topic, listener=lambda ev, key=key: seen[key].append(ev.body["k"]))
    for k in range(2000):
        for svc in services:
            svc.publish("a.x", {"k": k})
            svc.publish("a.y", {"k": k})
    for svc in services:
        assert svc.process_events(30) >= 0
    assert all(v == list(range(2000)) for v in seen.values())
    assert pool.peak_workers <= 4
    assert wait_until(lambda: pool.workers == 0, 5), "idle threads retire"
    for svc in services:
        svc.close()


@pytest.mark.timeout(60)
def test_a_blocked_listener_holds_one_thread_and_its_own_topic_only() -> None:
    pool = DispatchPool(max_workers=4, idle_timeout=0.5)
    slow, fast = service(pool, "slow"), service(pool, "fast")
    release = threading.Event()
    got: list[Any] = []
    slow.subscribe("t.blocked", listener=lambda ev: release.wait(20))
    slow_other: list[Any] = []
    slow.subscribe("t.other", listener=slow_other.append)
    fast.subscribe("t.fast", listener=got.append)
    slow.publish("t.blocked", {})
    slow.publish("t.blocked", {})  # waits behind the first, in its strand
    assert wait_until(lambda: pool.workers >= 1 and slow.dispatcher.pending() == 2, 5)
    t0 = time.monotonic()
    for k in range(100):
        fast.publish("t.fast", {"k": k})
    slow.publish("t.other", {})
    assert wait_until(lambda: len(got) == 100 and len(slow_other) == 1, 5)
    assert time.monotonic() - t0 < 5
    assert slow.process_events(0.2) == 0 and slow.dispatcher.pending() == 2  # still stuck: timed out
    release.set()
    assert slow.process_events(10) == 2 and slow.dispatcher.pending() == 0
    slow.close()
    fast.close()


def test_close_without_draining_drops_what_waits() -> None:
    pool = DispatchPool(max_workers=1, idle_timeout=0.2)
    svc = service(pool, "drop")
    gate, entered = threading.Event(), threading.Event()
    calls: list[str] = []
    svc.subscribe("d.*", listener=lambda ev: (entered.set(), gate.wait(10), calls.append(ev.topic)))
    svc.publish("d.x", {})  # taken by the one thread, which blocks in the listener
    assert entered.wait(5)
    for _ in range(5):
        svc.publish("d.y", {})  # waits: no thread left
    svc.close(drain=False)
    gate.set()
    # nothing queued and no thread delivering: what was left cannot be delivered any more
    assert wait_until(lambda: svc.dispatcher.pending() == 0 and svc.dispatcher._in_flight == 0, 5)
    assert calls == ["d.x"]
