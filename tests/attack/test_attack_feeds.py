"""Best-effort feeds under attack: many overlapping subscriptions in one client, and a kill -9 of
the server mid-stream (docs/fabric.md "Receiving", "Loss accounting")."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import nats
import pytest
from _fabric_helpers import unique, wait_until
from _raw_publisher import RawStream, batch_bytes

import evfabric
from evfabric.core.topics import Pattern
from evfabric.fabric.roundtrip import flush

pytestmark = [pytest.mark.broker, pytest.mark.timeout(40)]


def test_overlapping_patterns_in_one_client_each_get_exactly_theirs(broker_session) -> None:
    """Twelve subscriptions (some on the same pattern, one a group member) over four subjects
    from two raw streams: each plain subscription gets exactly the events its pattern matches,
    the group member all of its pattern's, none counted lost."""
    root = unique("aovl")
    topics = [f"{root}.a", f"{root}.b", f"{root}.a.b", f"{root}.c.b"]
    patterns = [f"{root}.*", f"{root}.*", f"{root}.?", f"{root}.a", f"{root}.a", f"{root}.?.b",
                f"{root}.a.*", f"{root}.*.b", f"{root}.c.?", f"{root}.a.b", f"{root}.b"]
    per = {t: 40 * (i + 1) for i, t in enumerate(topics)}  # events per topic
    with evfabric.connect(broker_session.url, source="r") as c:
        counts: Counter[int] = Counter()
        lock = threading.Lock()

        def counter(k: int):
            def f(ev: evfabric.Event) -> None:
                with lock:
                    counts[k] += 1
            return f
        subs = [c.subscribe(p, listener=counter(k)) for k, p in enumerate(patterns)]
        gsub = c.subscribe(f"{root}.*", group="solo", listener=counter(99))

        async def go() -> None:
            nc = await nats.connect(broker_session.url)
            streams = [RawStream(nc), RawStream(nc)]
            for t, n in per.items():
                for k in range(n // 10):
                    await streams[k % 2].publish(t, batch_bytes(t, k * 10, 10), 10)
            await flush(nc)
            await nc.close()
        asyncio.run(go())
        expected = {k: sum(n for t, n in per.items() if Pattern(p).matches(t)) for k, p in enumerate(patterns)}
        expected[99] = sum(per.values())
        assert wait_until(lambda: dict(counts) == {k: v for k, v in expected.items() if v}, timeout=10), (counts, expected)
        assert all(s.stats.dropped == 0 and s.stats.garbage == 0 for s in [*subs, gsub])


@pytest.mark.timeout(60)
def test_kill9_mid_stream_best_effort_sent_equals_received_plus_counted(broker) -> None:
    """An evfabric producer publishes best effort while the server is killed -9 and restarted:
    sent == received + counted lost (the consumer's gaps plus the producer's own drops)."""
    root = unique("ak9be")
    topic = f"{root}.x"
    with evfabric.connect(broker.url, source="p", overflow="drop") as pub, \
            evfabric.connect(broker.url, source="c") as con:
        got = [0]
        lock = threading.Lock()

        def take(ev: evfabric.Event) -> None:
            with lock:
                got[0] += 1
        sub = con.subscribe(topic, listener=take)
        sent = 0
        for chunk in range(30):
            pub.publish_many(topic, [{"i": i} for i in range(100)])
            sent += 100
            if chunk == 0:  # the books of a stream open with the first message a receiver sees
                assert wait_until(lambda: got[0] > 0, timeout=10)  # (docs/fabric.md: losses before it are not seen)
            if chunk == 10:
                pub.flush(10)
                broker.kill()
            if chunk == 15:
                broker.restart()
                assert wait_until(lambda: pub.stats.reconnects >= 1 and con.stats.reconnects >= 1, timeout=15)
        try:
            pub.flush(10)
        except evfabric.EvfabricError as exc:
            print(f"flush after the outage: {exc!r}")

        def balanced() -> bool:
            return got[0] + sub.stats.dropped + pub.stats.dropped == sent
        # the last messages' losses show once a later message of the stream arrives
        for _ in range(40):
            if wait_until(balanced, 0.25):
                break
            pub.publish(topic, {"marker": 1})
            sent += 1
        assert balanced(), (sent, got[0], sub.stats.dropped, pub.stats.dropped)
        print(f"kill -9 best effort: sent={sent} received={got[0]} consumer_dropped={sub.stats.dropped} producer_dropped={pub.stats.dropped} reconnects={pub.stats.reconnects},{con.stats.reconnects}")
        assert got[0] >= 1500  # the stream before and after the outage arrived


def test_backlog_drops_count_only_for_subscriptions_they_concern(broker_session) -> None:
    """`r.*` and `r.*.b` share one NATS filter (`r.>`); 2,000 events on `r.a` overflow a
    max_backlog of 100 (sync mode, nothing dispatched): `r.*` counts received-or-dropped ==
    2,000, and `r.*.b`, whose pattern none of them matches, counts no loss."""
    root = unique("abklg")
    topic = f"{root}.a"
    with evfabric.connect(broker_session.url, source="r", mode="sync", max_backlog=100) as c:
        wide = c.subscribe(f"{root}.*", listener=lambda ev: None)
        narrow = c.subscribe(f"{root}.*.b", listener=lambda ev: None)
        assert len(c._core.receiving.feeds) == 1  # the premise: one shared feed

        async def go() -> None:
            nc = await nats.connect(broker_session.url)
            raw = RawStream(nc)
            for k in range(20):
                await raw.publish(topic, batch_bytes(topic, k * 100, 100), 100)
            await flush(nc)
            await nc.close()
        asyncio.run(go())
        assert wait_until(lambda: wide.stats.received + wide.stats.dropped == 2000, timeout=10), wide.stats
        assert wide.stats.dropped > 0, "the backlog never overflowed: the fault did not happen"
        c.process_events(timeout=0.5)
        assert narrow.stats.dropped == 0, narrow.stats
