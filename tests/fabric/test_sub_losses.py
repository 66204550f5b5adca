"""Best-effort loss accounting on the receiving side (issue #11 point 2, docs/wire.md section 2):
every event a subscriber misses is counted, exactly, from the publishers' sequence numbers."""

from __future__ import annotations

import asyncio
import threading
import time

import nats
import nats.errors
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import RawStream, batch_bytes

import evfabric
from evfabric.fabric.roundtrip import flush
from evfabric.testing import running_broker

pytestmark = pytest.mark.broker


@pytest.mark.timeout(60)
def test_slow_consumer_cut_by_the_server_loses_nothing_uncounted(tmp_path) -> None:
    """A producer far faster than the consumer; the server cuts the consumer's connection as a
    slow consumer (max_pending 256 KB): sent == received + counted lost, exactly."""
    root = unique("slow")
    topic = f"{root}.x"
    with running_broker(tmp_path / "b", extra_config={"max_pending": 256 * 1024, "max_payload": 128 * 1024, "write_deadline": "500ms"}) as srv, \
            evfabric.connect(srv.url, source="slow", mode="threads") as c:
        got = [0]
        lock = threading.Lock()

        def slow(ev: evfabric.Event) -> None:
            with lock:
                got[0] += 1

        sub = c.subscribe(f"{root}.*", listener=slow)
        payload = batch_bytes(topic, 0, 200, {"pad": "p" * 200})

        async def produce() -> RawStream:
            nc = await nats.connect(srv.url)
            raw = RawStream(nc)
            t0 = time.monotonic()
            while c.stats.disconnects == 0 and time.monotonic() - t0 < 20:
                for _ in range(200):
                    await raw.publish(topic, payload, 200)
                await flush(nc)
            # once the consumer is back, a later message shows what was lost before it: send
            # one-event markers until the books balance (the first ones may come before the
            # reconnected client re-subscribed: they are lost, and counted, too)
            while time.monotonic() - t0 < 40:
                await raw.publish(topic, batch_bytes(topic, 0, 1), 1)
                await flush(nc)
                if await asyncio.to_thread(wait_until, lambda: got[0] + sub.stats.dropped == raw.sent, 0.25):
                    break
            await nc.close()
            return raw

        raw = asyncio.run(produce())
        assert c.stats.disconnects >= 1, "the server never cut the consumer: the fault did not happen"
        assert got[0] + sub.stats.dropped == raw.sent, (raw.sent, got[0], sub.stats.dropped)
        assert sub.stats.dropped > 0
        assert c.stats.dropped >= sub.stats.dropped  # the client counts the same loss (and reports it)


@pytest.mark.timeout(60)
def test_ten_subscriptions_one_pattern_share_one_nats_subscription(broker_session) -> None:
    """Ten subscriptions on one pattern in one client: one NATS subscription, each message decoded
    once; 100,000 events give exactly 1,000,000 listener calls, or the shortfall is counted."""
    root = unique("ten")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="ten", mode="threads") as c:
        calls = [0]
        lock = threading.Lock()

        def count(ev: evfabric.Event) -> None:
            with lock:
                calls[0] += 1

        subs = [c.subscribe(f"{root}.*", listener=count) for _ in range(10)]
        assert len({id(f) for s in subs for f in s.consumers}) == 1  # one feed: one NATS subscription
        dropped = []
        c.subscribe("cca.fabric.dropped", listener=dropped.append)

        async def produce() -> RawStream:
            nc = await nats.connect(broker_session.url)
            raw = RawStream(nc)
            payload = batch_bytes(topic, 0, 1000)
            for _ in range(100):
                await raw.publish(topic, payload, 1000)
            await flush(nc)
            await nc.close()
            return raw

        raw = asyncio.run(produce())
        assert raw.sent == 100_000

        def accounted() -> int:
            return calls[0] + sum(s.stats.dropped for s in subs)

        assert wait_until(lambda: accounted() == 1_000_000, timeout=40), (calls[0], [s.stats.dropped for s in subs])
        assert all(s.stats.received + s.stats.dropped == 100_000 for s in subs)
        if any(s.stats.dropped for s in subs):
            assert wait_until(lambda: bool(dropped), timeout=5)  # and reported


@pytest.mark.timeout(30)
def test_overlapping_subscriptions_share_decoded_events_and_identity_comes_from_the_subject(broker_session) -> None:
    root = unique("ovl")
    with evfabric.connect(broker_session.url, source="o", mode="sync") as c:
        a, b = [], []
        c.subscribe(f"{root}.*", listener=a.append)
        c.subscribe(f"{root}.*", listener=b.append)

        async def produce() -> None:
            nc = await nats.connect(broker_session.url)
            raw = RawStream(nc)
            # the payload claims another topic: the receiver takes the subject's
            await raw.publish(f"{root}.real", batch_bytes("elsewhere.fake", 0, 3), 3)
            await flush(nc)
            await nc.close()

        asyncio.run(produce())
        assert wait_until(lambda: c.process_events(0.05) >= 0 and len(a) == 3 and len(b) == 3, timeout=10)
        assert all(x is y for x, y in zip(a, b))  # decoded once, shared
        assert {e.topic for e in a} == {f"{root}.real"}


@pytest.mark.timeout(60)
def test_evfabric_publisher_to_a_cut_slow_consumer_is_accounted_exactly(tmp_path) -> None:
    """The same with evfabric on both ends (the publisher numbers its messages, wire.md section 2)."""
    root = unique("eslow")
    topic = f"{root}.x"
    conf = {"max_pending": 256 * 1024, "max_payload": 128 * 1024, "write_deadline": "500ms"}
    with running_broker(tmp_path / "b", extra_config=conf) as srv, \
            evfabric.connect(srv.url, source="p", max_batch_bytes=64 * 1024) as pub, \
            evfabric.connect(srv.url, source="slow", mode="threads") as c:

        async def headers_of_one() -> dict[str, str]:
            nc = await nats.connect(srv.url)
            sub = await nc.subscribe(f"evf.*.*.{root}.probe")
            await flush(nc)
            for _ in range(25):  # best effort: probe until one arrives
                pub.publish(f"{root}.probe", {})
                pub.flush()
                try:
                    msg = await sub.next_msg(0.2)
                    break
                except nats.errors.TimeoutError:
                    continue
            else:
                raise AssertionError("no probe arrived in 5 s")
            await nc.close()
            return dict(msg.headers or {})

        if "Evf-Seq" not in asyncio.run(headers_of_one()):
            pytest.skip("the publisher does not number its messages yet (Evf-Seq, branch pub)")
        got = [0]
        lock = threading.Lock()

        def slow(ev: evfabric.Event) -> None:
            with lock:
                got[0] += 1

        sub = c.subscribe(f"{root}.x", listener=slow)
        sent = 0
        t0 = time.monotonic()
        while c.stats.disconnects == 0 and time.monotonic() - t0 < 20:
            pub.publish_many(topic, [{"pad": "p" * 200}] * 20_000)
            sent += 20_000
        pub.flush(30)
        assert c.stats.disconnects >= 1, "the server never cut the consumer: the fault did not happen"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # markers until the books balance (see the raw test above)
            pub.publish(topic, {"last": True})
            pub.flush(10)
            sent += 1
            if wait_until(lambda n=sent: got[0] + sub.stats.dropped == n, timeout=0.25):
                break
        assert got[0] + sub.stats.dropped == sent, (sent, got[0], sub.stats.dropped)
        assert sub.stats.dropped > 0
