"""Thread-pool and asyncio dispatch: order per topic, pool growth, async listeners."""

import asyncio
import threading
import time
from collections import defaultdict

import pytest

from evfabric import EventService


@pytest.mark.parametrize("scheduling", ["shared", "round_robin"])
def test_thread_pool_keeps_order_per_topic(scheduling):
    svc = EventService(mode="threads", workers=3, scheduling=scheduling)
    seen = defaultdict(list)
    lock = threading.Lock()

    def listener(ev):
        with lock:
            seen[ev.topic].append(ev.body["i"])

    svc.subscribe("t.*", listener=listener)
    n = 5000
    for i in range(n):
        svc.publish(f"t.{i % 11}", {"i": i})
    svc.process_events(timeout=20)
    assert sum(len(v) for v in seen.values()) == n
    for topic, items in seen.items():
        assert items == sorted(items), topic
    svc.close()


def test_thread_pool_grows_with_demand_and_shrinks():
    svc = EventService(mode="threads", workers=1, max_workers=4)
    svc.dispatcher.idle_timeout = 0.2
    release = threading.Event()
    svc.subscribe("slow.*", listener=lambda e: release.wait(5))
    entered: set[str] = set()
    svc.subscribe("slow.*", listener=lambda e: entered.add(e.topic))  # runs after the blocking one
    for i in range(8):
        svc.publish(f"slow.{i}")
    deadline = time.monotonic() + 10
    while svc.dispatcher.peak_workers < 4 and time.monotonic() < deadline:  # wait for the pool to grow
        time.sleep(0.01)
    assert svc.dispatcher.workers == 4  # one blocked topic per thread, up to max_workers
    assert not entered  # every thread is held by the blocking listener
    release.set()
    svc.process_events(timeout=10)
    deadline = time.time() + 5
    while svc.dispatcher.workers > 1 and time.time() < deadline:
        time.sleep(0.05)
    assert svc.dispatcher.workers == 1 and svc.dispatcher.peak_workers == 4
    svc.close()


def test_threads_listener_failure_is_isolated():
    svc = EventService(mode="threads", workers=2)
    got = []
    svc.subscribe("a", listener=lambda e: 1 / 0)
    svc.subscribe("a", listener=got.append)
    for _ in range(10):
        svc.publish("a")
    svc.process_events(timeout=10)
    assert len(got) == 10 and svc.stats.listener_errors == 10
    svc.close()


def test_asyncio_mode_awaits_coroutine_listeners_in_order():
    async def main():
        svc = EventService(mode="asyncio")
        out = []

        async def slow_listener(ev):
            await asyncio.sleep(0.001 if ev.body["i"] % 2 else 0)
            out.append(ev.body["i"])

        plain = []
        svc.subscribe("a.?", listener=slow_listener)
        svc.subscribe("a.*", listener=lambda e: plain.append(e.body["i"]))
        for i in range(50):
            svc.publish("a.b", {"i": i})
        calls = await svc.drain()
        svc.close()
        return out, plain, calls

    out, plain, calls = asyncio.run(main())
    assert out == list(range(50)) and plain == list(range(50)) and calls == 100


def test_asyncio_mode_accepts_publishes_from_other_threads():
    async def main():
        svc = EventService(mode="asyncio")
        out = []
        svc.subscribe("x", listener=lambda e: out.append(e.body["i"]))
        t = threading.Thread(target=lambda: [svc.publish("x", {"i": i}) for i in range(100)])
        t.start()
        await asyncio.to_thread(t.join)
        await svc.drain()
        svc.close()
        return out

    assert asyncio.run(main()) == list(range(100))
