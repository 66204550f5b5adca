"""The reliable receiving path: acknowledgement outside the listener list (issue #12), byte-bounded
flow control and per-message dedupe (issue #11 point 3), poison messages (point 4)."""

from __future__ import annotations

import asyncio
import threading
import time

import nats
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import POISON_RANDOM, POISON_TYPES, RawStream, batch_bytes, deep_body_batch

import evfabric
from evfabric.core.event import RELIABLE, Event
from evfabric.core.topics import Pattern
from evfabric.fabric.handler import EventHandler, Settle
from evfabric.fabric.subjects import partition_of, topic_subject
from evfabric.fabric.subscription import FabricSubscription
from evfabric.testing import running_broker

pytestmark = pytest.mark.broker


@pytest.mark.timeout(30)
def test_stats_count_user_listener_calls_only(broker_session) -> None:
    root = unique("cnt")
    with evfabric.connect(broker_session.url, source="c", mode="sync") as c:
        got: list[Event] = []
        sub = c.subscribe(f"{root}.*", delivery="reliable", listener=got.append)
        c.publish_many(f"{root}.x", [{"i": i} for i in range(5)], delivery="reliable")
        c.flush()
        calls = 0
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            calls += c.process_events(0.05)
        assert calls == 5 and len(got) == 5
        assert c.aio.local.stats.delivered == 5
        assert wait_until(lambda: c.lag(sub) == 0)


@pytest.mark.timeout(30)
def test_a_failure_is_counted_once_per_event_and_attempt(broker_session) -> None:
    root = unique("fail")
    with evfabric.connect(broker_session.url, source="c", mode="threads") as c:
        tries: list[int] = []

        def fails_once(ev: Event) -> None:
            tries.append(ev.body["i"])
            if tries.count(ev.body["i"]) == 1:
                raise RuntimeError("first time")

        sub = c.subscribe(f"{root}.*", delivery="reliable", redeliver_delay=0.01, listener=fails_once)
        sub.add_listener(lambda ev: None)  # a second listener: the failure is still counted once
        c.publish_many(f"{root}.x", [{"i": i} for i in range(3)], delivery="reliable")
        c.flush()
        assert wait_until(lambda: len(tries) == 6 and c.lag(sub) == 0)
        assert sub.stats.failed == 3


class Recorder:
    """A handler of its own (as a trigger runner is): fails each event's first attempt."""

    def __init__(self) -> None:
        self.attempts: list[tuple[int, int]] = []

    def handle(self, events: list[Event], settle: Settle) -> None:
        for ev in events:
            self.attempts.append((ev.body["i"], settle.attempt))
            settle(ev, RuntimeError("again") if settle.attempt == 1 else None)


@pytest.mark.timeout(30)
def test_custom_event_handler_settles_through_the_public_protocol(broker_session) -> None:
    root = unique("hnd")
    with evfabric.connect(broker_session.url, source="c") as c:
        rec = Recorder()
        assert isinstance(rec, EventHandler)
        sub = FabricSubscription(c.aio, Pattern(f"{root}.*"), None, f"h_{root}", RELIABLE, f"h_{root}", True,
                                 handler=rec)
        c._run(c.aio.attach(sub, redeliver_delay=0.01))
        c.publish_many(f"{root}.x", [{"i": i} for i in range(4)], delivery="reliable")
        c.flush()
        assert wait_until(lambda: len(rec.attempts) == 8)
        assert sorted(rec.attempts) == sorted([(i, a) for i in range(4) for a in (1, 2)])
        assert sub.stats.failed == 4
        c._run(c.aio.detach(sub))


@pytest.mark.timeout(60)
def test_big_messages_many_in_flight_no_disconnect_no_stall_exact_count(tmp_path) -> None:
    """max_inflight=512 with ~130 KB messages on a server whose slow-consumer limit is 16 MB: the
    byte budget keeps the server from cutting us; every id reaches the listener exactly once."""
    n = 200_000
    root = unique("big")
    with running_broker(tmp_path / "b", extra_config={"max_pending": 16 * 1024 * 1024}) as srv, \
            evfabric.connect(srv.url, source="p") as pub, evfabric.connect(srv.url, source="s") as con:
        pub.create_topic(root)
        seen: dict[int, int] = {}
        lock = threading.Lock()

        def on_event(ev: Event) -> None:
            with lock:
                seen[ev.body["i"]] = seen.get(ev.body["i"], 0) + 1

        sub = con.subscribe(f"{root}.*", delivery="reliable", max_inflight=512, pull_batch=256, listener=on_event)
        pad = "x" * 100
        t0 = time.monotonic()
        for i in range(0, n, 10_000):
            pub.publish_many(f"{root}.e", [{"i": j, "p": pad} for j in range(i, i + 10_000)], delivery="reliable")
        pub.flush(60)
        assert wait_until(lambda: len(seen) == n, timeout=40), len(seen)
        elapsed = time.monotonic() - t0
        assert wait_until(lambda: con.lag(sub) == 0)
        assert con.stats.disconnects == 0
        assert sum(seen.values()) == n  # exactly once each...
        assert all(v == 1 for v in seen.values())  # ...and redelivered copies, if any, were counted, not delivered
        assert elapsed < 25, f"{elapsed:.1f} s: a stall"


@pytest.mark.timeout(90)
def test_a_server_limit_below_the_byte_window_costs_a_few_cuts_not_the_stream(tmp_path) -> None:
    """A server whose slow-consumer limit (2 MB) is below the consumer's byte window (8 MB), ~250 KB
    messages: the server cuts the connection, the window halves at each cut until the server
    keeps it, and every id reaches the listener exactly once."""
    n = 30_000
    root = unique("low")
    conf = {"max_pending": 2 * 1024 * 1024, "write_deadline": "2s"}
    with running_broker(tmp_path / "b", extra_config=conf) as srv, \
            evfabric.connect(srv.url, source="p") as pub, evfabric.connect(srv.url, source="s") as con:
        pub.create_topic(root)
        pad = "y" * 1000
        for k in range(0, n, 1000):
            pub.publish_many(f"{root}.x", [{"i": k + q, "pad": pad} for q in range(1000)], delivery="reliable")
        pub.flush(60)
        seen: dict[int, int] = {}
        lock = threading.Lock()

        def on_event(ev: Event) -> None:
            with lock:
                seen[ev.body["i"]] = seen.get(ev.body["i"], 0) + 1

        sub = con.subscribe(f"{root}.*", delivery="reliable", start="earliest", max_inflight=8192, pull_batch=1024,
                            ack_wait=2.0, listener=on_event)
        assert wait_until(lambda: len(seen) == n, timeout=60), (len(seen), con.stats.disconnects)
        assert wait_until(lambda: con.lag(sub) == 0)
        assert all(v == 1 for v in seen.values())
        window = sub.consumers[0].max_bytes
        assert con.stats.disconnects <= 3 and window <= 2 * 1024 * 1024, (con.stats.disconnects, window)


@pytest.mark.timeout(40)
def test_poison_messages_never_block_an_ordered_partition(broker_session) -> None:
    root = unique("poison")
    with evfabric.connect(broker_session.url, source="c") as c:
        c.create_topic(root, partitions=2)
        got: list[int] = []
        garbage: list[Event] = []
        c.subscribe("cca.fabric.garbage", listener=garbage.append)
        sub = c.subscribe(f"{root}.*", delivery="reliable", group="g", ack_wait=30.0, listener=lambda e: got.append(e.body["i"]))
        key = "k"
        part = partition_of(key, 2)

        async def poison() -> None:
            nc = await nats.connect(broker_session.url)
            js = nc.jetstream()
            subject = topic_subject(f"{root}.x", part)
            for payload in (deep_body_batch(f"{root}.x"), POISON_RANDOM, POISON_TYPES):
                await js.publish(subject, payload)
            raw = RawStream(nc)
            await js.publish(subject, batch_bytes(f"{root}.x", 0, 1, {"i": -1}), headers=raw.headers(subject, 1))
            await nc.close()

        t0 = time.monotonic()
        asyncio.run(poison())
        for i in range(5):
            c.publish(f"{root}.x", {"i": i}, key=key, delivery="reliable")
        assert wait_until(lambda: len(got) == 6, timeout=10), got
        assert time.monotonic() - t0 < 3, "the poison held the partition"
        assert got == [-1, 0, 1, 2, 3, 4]  # order kept in the partition
        assert sub.stats.garbage == 3 and c.stats.garbage == 3
        assert wait_until(lambda: bool(garbage) and sum(g.body["count"] for g in garbage) == 3, timeout=5)
        assert wait_until(lambda: c.lag(sub) == 0)  # terminated: nothing left to redeliver
