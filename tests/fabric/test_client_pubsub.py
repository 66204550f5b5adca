"""Best-effort publish/subscribe through a real broker: the same listener model as EventService."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import nats
import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import BrokerUnavailable, InvalidTopic, ReservedTopic
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject
from evfabric.testing import wait_until_async

pytestmark = pytest.mark.broker


def test_connect_without_server_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nobody listens there
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="no broker answers"):
        evfabric.connect(f"nats://127.0.0.1:{port}", connect_timeout=1)
    assert time.monotonic() - t0 < 10


def test_patterns_filters_and_listeners(broker_session) -> None:
    root = unique("ps")
    with evfabric.connect(broker_session.url, source="pub") as c:
        got: dict[str, list] = {"deep": [], "one": [], "mid": [], "hot": []}
        c.subscribe(f"{root}.*", listener=lambda e: got["deep"].append(e.topic))
        c.subscribe(f"{root}.?", listener=lambda e: got["one"].append(e.topic))
        c.subscribe(f"{root}.*.temp", listener=lambda e: got["mid"].append(e.topic))  # NATS cannot express it
        hot = c.subscribe(f"{root}.*", "body.c > 30.0")
        hot.add_listener(lambda e: got["hot"].append(e.body["c"]))
        for t, v in [("a", 10.0), ("a.temp", 35.0), ("a.b.temp", 31.0), ("a.temp.x", 40.0)]:
            c.publish(f"{root}.{t}", {"c": v})
        c.publish("other.a", {"c": 99.0})
        c.flush()
        # markers, sent after all of the above: a subscription's broker feed brings its messages
        # in order, so once it heard its marker, anything it should not get was queued before the
        # marker, and process_events() waits until what is queued has been delivered
        c.publish(f"{root}.m", {"c": 50.0})  # deep, one, hot
        c.publish(f"{root}.m.temp", {"c": 0.0})  # deep, mid
        c.flush()
        assert wait_until(lambda: {f"{root}.m", f"{root}.m.temp"} <= set(got["deep"]) and f"{root}.m" in got["one"]
                          and f"{root}.m.temp" in got["mid"] and 50.0 in got["hot"]), got
        c.process_events(10)
        assert sorted(got["deep"]) == sorted(f"{root}.{t}" for t in ("a", "a.temp", "a.b.temp", "a.temp.x", "m", "m.temp"))
        assert got["one"] == [f"{root}.a", f"{root}.m"]
        # different topics: no order between them is promised in threads mode
        assert sorted(got["mid"]) == sorted([f"{root}.a.temp", f"{root}.a.b.temp", f"{root}.m.temp"])
        assert sorted(got["hot"]) == [31.0, 35.0, 40.0, 50.0]
        with pytest.raises(ReservedTopic):
            c.publish("cca.x", {})
        with pytest.raises(InvalidTopic):
            c.publish("bad topic", {})


@pytest.mark.parametrize("delivery", ["best_effort", "reliable"])
def test_a_filter_counts_what_it_filters_and_reports_its_errors(broker_session, delivery: str) -> None:
    root = unique("flt")
    with evfabric.connect(broker_session.url, source="f") as c:
        if delivery == "reliable":
            c.create_topic(root)
        errors: list = []
        c.subscribe("cca.filter.error", listener=errors.append)
        got: list = []
        sub = c.subscribe(f"{root}.*", "body.i % 2 == 0", listener=lambda e: got.append(e.body["i"]), delivery=delivery)
        for i in range(10):
            c.publish(f"{root}.x", {"i": i}, delivery=delivery)
        c.publish(f"{root}.x", {"i": "two"}, delivery=delivery)  # '%' on a string: an error, not a match
        c.flush()
        assert wait_until(lambda: sub.stats.received == 11 and len(errors) == 1), (sub.stats, errors)
        c.process_events(10)
        assert got == [0, 2, 4, 6, 8]
        assert (sub.stats.handed, sub.stats.filtered) == (5, 6), sub.stats
        assert errors[0].body["subscription"] == sub.name and errors[0].body["filter"] == "body.i % 2 == 0"


def test_two_clients_remove_listener_unsubscribe_and_sync_mode(broker_session) -> None:
    root = unique("ps")
    with evfabric.connect(broker_session.url, source="a") as pub, \
            evfabric.connect(broker_session.url, source="b", mode="sync") as sub_client:
        seen: list = []
        threads: set[int] = set()
        sub = sub_client.subscribe(f"{root}.*")
        fn = sub.add_listener(lambda e: (seen.append(e), threads.add(threading.get_ident())))

        def queued() -> int:
            return sub_client.aio.local.stats.pending  # events received, waiting for process_events()

        pub.publish(f"{root}.x", {"i": 1}, type="demo", key="k1", lab="one")
        pub.flush()
        assert wait_until(lambda: queued() >= 1)  # received and queued here
        assert seen == []  # sync mode: nothing until process_events()
        assert sub_client.process_events() >= 1
        assert len(seen) == 1 and threads == {threading.get_ident()}  # delivered then, in this thread
        ev = seen[0]
        assert (ev.source, ev.type, ev.key, ev.extra, ev.body) == ("a", "demo", "k1", {"lab": "one"}, {"i": 1})
        assert sub.remove_listener(fn)
        pub.publish(f"{root}.x", {"i": 2})
        pub.flush()
        assert wait_until(lambda: queued() >= 1)
        sub_client.process_events()
        assert len(seen) == 1 and sub.stats.handed == 2
        sub.add_listener(seen.append)
        probe = sub_client.subscribe(f"{root}.*")  # fed by the same broker subscription, after sub
        sub.unsubscribe()
        pub.publish(f"{root}.x", {"i": 3})
        pub.flush()
        assert wait_until(lambda: probe.stats.handed == 1)  # the feed handled i=3: sub would have had it first
        sub_client.process_events()
        assert len(seen) == 1 and not sub.active and sub.stats.handed == 2


def test_burst_travels_in_few_messages_and_lone_event_is_not_delayed(broker_session) -> None:
    root = unique("batch")
    subject = topic_subject(f"{root}.t")

    async def count_messages(n_events: int) -> tuple[int, float]:
        nc = await nats.connect(broker_session.url)
        msgs: list[bytes] = []

        async def on_msg(m) -> None:
            msgs.append(m.data)

        await nc.subscribe(subject, cb=on_msg)
        await flush(nc)
        client = await evfabric.connect_async(broker_session.url, max_batch=500)
        t0 = time.monotonic()
        await client.publish(f"{root}.t", {"lone": True})
        while not msgs and time.monotonic() - t0 < 5:
            await asyncio.sleep(0.0005)
        lone_latency = time.monotonic() - t0
        await client.publish_many(f"{root}.t", [{"i": i} for i in range(n_events)])
        await client.flush()
        # a marker after the burst, on the same subject and connection: it arrives after all of it
        await client.publish(f"{root}.t", {"end-of-burst-marker": True})
        await client.flush()
        assert await wait_until_async(lambda: any(b"end-of-burst-marker" in m for m in msgs))
        assert b"end-of-burst-marker" in msgs[-1]
        await client.close()
        await nc.close()
        return len(msgs) - 2, lone_latency

    messages, latency = asyncio.run(count_messages(5000))
    assert 10 <= messages <= 100  # 5000 events in batches of at most 500
    assert latency < 1.0  # not held back waiting for company (no linger)


def test_consumer_unpacks_batches_from_many_submits(broker_session) -> None:
    root = unique("batch")
    with evfabric.connect(broker_session.url) as c:
        got: list[int] = []
        c.subscribe(f"{root}.*", listener=lambda e: got.append(e.body["i"]))
        for i in range(3000):
            c.submit(f"{root}.n", {"i": i})
        c.flush()
        assert wait_until(lambda: len(got) == 3000)
        assert got == list(range(3000))  # one publisher, one topic: publish order
        assert c.stats.sent == 3000


def test_garbage_is_counted_and_reported_never_delivered(broker_session) -> None:
    root = unique("junk")
    with evfabric.connect(broker_session.url) as c:
        good: list = []
        reports: list = []
        c.subscribe(f"{root}.*", listener=good.append)
        c.subscribe("cca.fabric.*", listener=reports.append)

        async def spray() -> None:
            nc = await nats.connect(broker_session.url)
            for junk in (b"\xff\x00garbage", b"", b"\x91\x01", b'{"id": 1}'):
                await nc.publish(topic_subject(f"{root}.x"), junk)
            await flush(nc)
            await nc.close()

        asyncio.run(spray())
        c.publish(f"{root}.x", {"ok": True})
        c.flush()
        assert wait_until(lambda: len(good) == 1 and c.stats.garbage == 4 and reports)
        assert good[0].body == {"ok": True}
        assert reports[0].topic == "cca.fabric.garbage" and reports[0].body["count"] >= 1


def test_slow_consumer_drops_are_counted_and_reported(broker_session) -> None:
    root = unique("slow")
    with evfabric.connect(broker_session.url, max_backlog=10, max_batch=1) as c:
        drops: list = []
        c.subscribe("cca.fabric.dropped", listener=drops.append)
        c.subscribe(f"{root}.*", listener=lambda e: time.sleep(0.01))
        for i in range(300):
            c.submit(f"{root}.x", {"i": i})
        c.flush()
        assert wait_until(lambda: bool(drops), timeout=10)
        assert drops[0].body["reason"] in ("backlog", "slow_consumer") and drops[0].body["count"] > 0
        assert c.stats.dropped + c.stats.slow_consumer_msgs > 0


def test_async_client_with_coroutine_listener(broker_session) -> None:
    root = unique("aio")

    async def main() -> list:
        got: list = []

        async def listener(ev: evfabric.Event) -> None:
            await asyncio.sleep(0)
            got.append(ev.body["i"])

        async with await evfabric.connect_async(broker_session.url) as client:
            sub = await client.subscribe(f"{root}.?")
            sub.add_listener(listener)
            for i in range(5):
                await client.publish(f"{root}.x", {"i": i})
            await client.flush()
            await wait_until_async(lambda: len(got) == 5)
        return got

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_connect_error_never_echoes_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BrokerUnavailable) as err:
        evfabric.connect(f"nats://someone:s3cret-token@127.0.0.1:{port}", connect_timeout=1)
    assert "s3cret-token" not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
