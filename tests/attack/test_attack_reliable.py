"""Reliable-path attacks: groups, positions, lag in events, spawned producers, close() against a
killed server (docs/fabric.md "Delivery", docs/wire.md section 8)."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import ConfigError

pytestmark = [pytest.mark.broker, pytest.mark.timeout(40)]


def test_group_of_three_each_event_exactly_once(broker_session) -> None:
    """Three members of one group, 3,000 reliable events (batches): each id exactly once overall."""
    root = unique("agrp")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="p") as prod:
        prod.create_topic(root)
        clients = [evfabric.connect(broker_session.url, source=f"m{i}") for i in range(3)]
        seen: list[str] = []
        lock = threading.Lock()

        def take(ev: evfabric.Event) -> None:
            with lock:
                seen.append(ev.id)
        try:
            subs = [c.subscribe(f"{root}.*", group="g", delivery="reliable", listener=take) for c in clients]
            for _ in range(3):
                prod.publish_many(topic, [{"i": i} for i in range(1000)], delivery="reliable")
            prod.flush(timeout=15)
            assert wait_until(lambda: len(seen) >= 3000, timeout=15), len(seen)
            # every message acknowledged (the group's lag is 0): no second delivery can come
            assert wait_until(lambda: all(c.lag(s) == 0 for c, s in zip(clients, subs, strict=True)), timeout=15)
            assert len(seen) == 3000 and len(set(seen)) == 3000
        finally:
            for c in clients:
                c.close()


def test_replay_from_an_event_position(broker_session) -> None:
    """Message 1 holds 10 events; start='1:4' must give events 4..9 of it."""
    root = unique("apos")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        c.publish_many(topic, [{"i": i} for i in range(10)], delivery="reliable")
        c.flush(timeout=10)
        seq = 1  # a fresh topic: its first stored message
        got: list[evfabric.Event] = []
        try:
            c.subscribe(f"{root}.*", start=f"{seq}:4", listener=got.append)
        except ConfigError:
            raise AssertionError("event positions are refused") from None
        assert wait_until(lambda: len(got) == 6, timeout=10), len(got)
        assert [e.body["i"] for e in got] == list(range(4, 10))


def test_lag_counts_events_not_messages(broker_session) -> None:
    root = unique("alag")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        block = threading.Event()
        sub = c.subscribe(f"{root}.*", start="earliest", listener=lambda ev: block.wait(10))
        c.publish_many(topic, [{"i": i} for i in range(500)], delivery="reliable")
        c.flush(timeout=10)
        try:
            assert wait_until(lambda: c.lag(sub) > 0, timeout=5)
            assert c.lag(sub) >= 400, c.lag(sub)  # events, of which the listener has at most a few
        finally:
            block.set()


def _spawned_producer(url: str, topic: str, n: int, q: mp.Queue) -> None:
    with evfabric.connect(url, source="sp") as c:
        ids = [c.publish(topic, {"i": i}, delivery="reliable").id for i in range(n)]
    q.put(ids)


@pytest.mark.timeout(60)
def test_spawned_and_forked_producers_acked_equals_stored(broker_session) -> None:
    """Two spawned and two forked processes (the parent connected before forking), 500 reliable
    publishes each: acked ids distinct, and a replay receives exactly those."""
    root = unique("aspn")
    topic = f"{root}.x"
    n = 500
    with evfabric.connect(broker_session.url, source="parent") as parent:
        parent.create_topic(root)
        procs, queues = [], []
        for method in ("spawn", "spawn", "fork", "fork"):
            ctx = mp.get_context(method)
            q = ctx.Queue()
            p = ctx.Process(target=_spawned_producer, args=(broker_session.url, topic, n, q))
            p.start()
            procs.append(p)
            queues.append(q)
        acked: list[str] = []
        for q in queues:
            acked.extend(q.get(timeout=45))
        for p in procs:
            p.join(10)
            assert p.exitcode == 0
        assert len(acked) == 4 * n and len(set(acked)) == 4 * n
        got: list[str] = []
        parent.subscribe(f"{root}.*", start="earliest", listener=lambda ev: got.append(ev.id))
        assert wait_until(lambda: len(got) >= 4 * n, timeout=15), len(got)
        assert sorted(got) == sorted(acked)


@pytest.mark.timeout(30)
def test_close_with_unconfirmed_reliable_events_after_kill9_raises_in_bounded_time(tmp_path) -> None:
    """The server is killed -9 with reliable events accepted but not stored: close(timeout=3)
    returns or raises within ~5 s; it never reports success silently for events not stored."""
    from evfabric.testing import running_broker
    root = unique("acls")
    with running_broker(tmp_path / "b") as srv:
        c = evfabric.connect(srv.url, source="p")
        c.create_topic(root)
        srv.kill()
        tickets = [c.submit(f"{root}.x", {"i": i}, delivery="reliable") for i in range(50)]
        t0 = time.monotonic()
        with pytest.raises(evfabric.EvfabricError):
            c.close(timeout=3)
        assert time.monotonic() - t0 < 6
        assert not any(t.done() and t.exception() is None for t in tickets)  # none claims stored


def test_reliable_lying_headers_are_terminated_not_redelivered(broker_session) -> None:
    """JetStream messages with Evf-Count lies and Evf-Version 99 (raw js.publish): garbage, +TERM
    (lag 0 with ack_wait 1 s), the honest message after them delivered once."""
    import asyncio

    import nats
    from _raw_publisher import batch_bytes

    from evfabric.fabric.subjects import topic_subject
    root = unique("arlie")
    topic = f"{root}.x"
    with evfabric.connect(broker_session.url, source="s") as c:
        c.create_topic(root)
        got: list[evfabric.Event] = []
        sub = c.subscribe(f"{root}.*", delivery="reliable", ack_wait=1.0, listener=got.append)
        base = {"Content-Type": "application/vnd.evfabric.events+msgpack", "Evf-Version": "1",
                "Evf-Stream": "00" * 8}

        async def go() -> None:
            nc = await nats.connect(broker_session.url)
            js = nc.jetstream()
            subj = topic_subject(topic)
            await js.publish(subj, batch_bytes(topic, 0, 3), headers={**base, "Evf-Seq": "1", "Evf-Count": "10"})
            await js.publish(subj, batch_bytes(topic, 3, 3), headers={**base, "Evf-Seq": "4", "Evf-Count": "3",
                                                                      "Evf-Version": "99"})
            await js.publish(subj, batch_bytes(topic, 6, 3), headers={**base, "Evf-Seq": "-1", "Evf-Count": "3"})
            await nc.close()
        asyncio.run(go())
        assert wait_until(lambda: sub.stats.garbage == 2 and len(got) == 3 and c.lag(sub) == 0, timeout=10), \
            (sub.stats, len(got))
        # lag 0: the poison messages were terminated (not left to come back after ack_wait)
        assert sub.stats.garbage == 2 and len(got) == 3


def _stuck_member(url: str, root: str, q: mp.Queue) -> None:
    c = evfabric.connect(url, source="doomed")
    hold = threading.Event()

    def take(ev: evfabric.Event) -> None:
        q.put(ev.id)
        hold.wait()  # never returns: the messages stay unacknowledged until kill -9
    c.subscribe(f"{root}.*", group="g", delivery="reliable", ack_wait=2.0, listener=take)
    q.put("ready")
    hold.wait()


@pytest.mark.timeout(60)
def test_group_member_killed_9_its_messages_go_to_the_survivor(broker_session) -> None:
    """A group member (own process) takes messages and never acks; kill -9 it: after ack_wait
    (2 s) the survivor receives every one of 2,000 events, each exactly once on its side."""
    import os
    import signal
    root = unique("agk9")
    topic = f"{root}.x"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with evfabric.connect(broker_session.url, source="p") as c:
        c.create_topic(root)
        child = ctx.Process(target=_stuck_member, args=(broker_session.url, root, q))
        child.start()
        try:
            assert q.get(timeout=30) == "ready"
            first = [c.publish(topic, {"i": i}, delivery="reliable").id for i in range(20)]
            assert q.get(timeout=10) in first  # the doomed member holds at least one message
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        seen: list[str] = []
        lock = threading.Lock()

        def take(ev: evfabric.Event) -> None:
            with lock:
                seen.append(ev.id)
        c.subscribe(f"{root}.*", group="g", delivery="reliable", ack_wait=2.0, listener=take)
        c.publish_many(topic, [{"i": i} for i in range(20, 2000)], delivery="reliable")
        c.flush(15)
        stored = c.describe_topic(root)
        assert wait_until(lambda: len(set(seen)) >= 2000, timeout=20), (len(set(seen)), stored)
        assert set(first) <= set(seen) and len(seen) == len(set(seen)) == 2000
