"""Publishing over many topics: cheap tickets, sparse drains that let events gather, header blocks
serialized once, and end to end: every event of a round robin over many topics arrives, in order
per topic, handed off per burst on the receiving side."""

from __future__ import annotations

import threading
import time

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import PublishTimeout
from evfabric.core.event import make_event
from evfabric.fabric.batching import SPARSE_SUBJECTS, SPARSE_TARGET, Batcher, Ticket
from evfabric.fabric.outbound import header_block

pytestmark = pytest.mark.timeout(120)


def ev(topic: str = "t", i: int = 0):
    return make_event(topic, {"i": i}, source="s")


def test_ticket_wait_from_threads_and_callbacks() -> None:
    t = Ticket()
    t._seal(2)
    got: list[str] = []
    started = [threading.Event() for _ in range(3)]
    waiters = [threading.Thread(target=lambda s=s: (s.set(), t.wait(5), got.append("w"))) for s in started]
    for w in waiters:
        w.start()
    assert all(s.wait(5) for s in started)
    assert not t.done() and got == []
    t._part_done()
    t._part_done()
    for w in waiters:
        w.join(5)
    assert got == ["w", "w", "w"] and t.done()
    seen: list[Ticket] = []
    t.add_done_callback(seen.append)  # already done: called at once
    assert seen == [t]
    late = Ticket()
    late._seal(1)
    with pytest.raises(PublishTimeout):
        late.wait(0.01)
    late.add_done_callback(seen.append)
    late._part_done(RuntimeError("refused"))
    assert seen == [t, late] and isinstance(late.exception(), RuntimeError)
    with pytest.raises(RuntimeError):
        late.wait(1)


def test_a_sparse_drain_lets_events_gather() -> None:
    b = Batcher()
    subjects = [f"evf._.0.t.{i}" for i in range(SPARSE_SUBJECTS * 2)]
    for s in subjects:
        b.add(s, "best_effort", ev())
    assert b.gathered()  # nothing drained yet: nothing to wait for
    b.drain()
    assert b.sparse and b.gathered()  # sparse, but nothing buffered yet... (0 >= 8 * 0)
    wakes = []
    for r in range(SPARSE_TARGET):
        for s in subjects:
            _, wake = b.add(s, "best_effort", ev())
            wakes.append(wake)
        if r < SPARSE_TARGET - 1:
            assert not b.gathered()  # fewer than SPARSE_TARGET per subject so far
    assert b.gathered() and wakes[0] and wakes[-1] and wakes.count(True) == 2  # first event, then enough
    batches = b.drain()
    assert len(batches) == len(subjects) and {len(x.events) for x in batches} == {SPARSE_TARGET}
    assert not b.sparse  # 8 per subject is not sparse: the next lone event leaves at once


def test_a_few_subjects_are_never_sparse() -> None:
    b = Batcher()
    for i in range(SPARSE_SUBJECTS - 1):
        b.add(f"evf._.0.t.{i}", "best_effort", ev())
    b.drain()
    assert not b.sparse and b.gathered()


def test_header_block_is_the_nats_header_block() -> None:
    headers = {"Content-Type": "application/vnd.evfabric.columns+msgpack", "Evf-Version": "1", "Evf-Seq": "7"}
    assert header_block(headers) == (b"NATS/1.0\r\nContent-Type: application/vnd.evfabric.columns+msgpack\r\n"
                                     b"Evf-Version: 1\r\nEvf-Seq: 7\r\n\r\n")
    b = Batcher()
    b.add("evf._.0.t", "reliable", ev())
    (batch,) = b.drain()
    assert batch.block == header_block(batch.headers) and b"Nats-Msg-Id: " in batch.block


def test_round_robin_over_many_topics_end_to_end(broker_session) -> None:
    root = unique("many")
    topics, rounds = 1000, 12
    with evfabric.connect(broker_session.url, source="rr") as sub_c, evfabric.connect(broker_session.url) as pub:
        got: dict[str, list[int]] = {}
        lock = threading.Lock()

        def listener(e: evfabric.Event) -> None:
            with lock:
                got.setdefault(e.topic, []).append(e.body["i"])

        sub = sub_c.subscribe(f"{root}.*", listener=listener)
        for r in range(rounds):
            for t in range(topics):
                pub.publish(f"{root}.t{t}", {"i": r})
        pub.flush(30)
        sent_msgs = pub.aio.nc.stats["out_msgs"]
        deadline = time.monotonic() + 30
        while sum(map(len, got.values())) < topics * rounds and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(map(len, got.values())) == topics * rounds
        assert all(v == list(range(rounds)) for v in got.values())  # per-topic order kept
        assert sub.stats.dropped == 0 and sub.stats.garbage == 0
        assert sent_msgs < topics * rounds  # batched: fewer messages than events


@pytest.mark.broker
def test_an_expired_no_topic_answer_does_not_make_publish_wait(broker) -> None:
    """Round robin over many topics outlives the catalog's 5 s "no topic here" answers: the expired
    answer stands while it is asked again in the background, so publish() never waits for the
    catalog (it waited on 37 % of 100,000 calls over 10,000 topics), and the fresh answer comes."""
    root = unique("many")
    topic = f"{root}.t1"
    with evfabric.connect(broker.url, source="p") as client:
        got: list = []
        client.subscribe(f"{root}.*", listener=got.append)
        client.publish(topic, {"i": 0}, wait=False)  # the first answer is asked and waited for
        cache = client._core.catalog.cache
        before = cache.lookups
        cache.negative_ttl = 0.0  # every answer expired from now on
        release = threading.Event()
        resolve = client._core.catalog.resolve

        async def slow_resolve(name: str):
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
            return await resolve(name)

        client._core.catalog.resolve = slow_resolve  # type: ignore[method-assign]
        t0 = time.monotonic()
        for i in range(1, 101):
            client.publish(topic, {"i": i}, wait=False)
        took = time.monotonic() - t0
        assert took < 5, f"publish waited for the catalog: {took:.1f} s for 100 calls"
        assert len(client._core.outbox._refreshing) == 1  # one lookup at a time for the topic
        release.set()
        assert wait_until(lambda: cache.lookups > before and not client._core.outbox._refreshing)
        client.flush(10)
        assert wait_until(lambda: len(got) == 101), len(got)
        assert [ev.body["i"] for ev in got] == list(range(101))


@pytest.mark.broker
def test_new_topics_are_answered_from_what_the_catalog_said(broker) -> None:
    """A namespace known to have no durable topic answers for each new topic in it, and a durable
    topic known above a new subtopic covers it (keyed events go to their partitions), without
    asking the broker again."""
    from evfabric.fabric.subjects import partition_of, topic_subject

    empty, durable = unique("empty"), unique("parts")
    with evfabric.connect(broker.url, source="p") as client:
        client.create_topic(durable, partitions=4)
        client.publish(f"{empty}.t0", {}, wait=False)  # one lookup: the namespace has no topic
        cache = client._core.catalog.cache
        before = cache.lookups

        def asked(topic: str) -> None:
            raise AssertionError(f"publish asked the catalog (on the loop) about {topic!r}")

        client._core.outbox._resolve = asked  # type: ignore[method-assign]
        for i in range(1, 200):
            client.publish(f"{empty}.t{i}", {}, wait=False)
        subjects = [client._core.outbox.route(make_event(f"{durable}.job{i}", {}, source="p", key=f"k{i}"), None)[0]
                    for i in range(8)]
        assert cache.lookups == before, cache.lookups - before
        assert subjects == [topic_subject(f"{durable}.job{i}", partition_of(f"k{i}", 4)) for i in range(8)]
        assert len({s.split(".")[2] for s in subjects}) > 1  # (the keys spread over partitions)
        client.flush(10)
