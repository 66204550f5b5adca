"""What only the in-memory broker shows (or shows deterministically): join, counted drops,
replay by time on a manual clock, durable backlogs, key affinity, threads mode."""

from __future__ import annotations

import threading

import pytest

from evfabric.bus import Bus
from evfabric.core.errors import ReceiveTimeout, ReservedTopic
from evfabric.core.event import Event
from evfabric.testing import ManualClock, MemoryBroker


def test_a_client_is_a_bus() -> None:
    client = MemoryBroker().connect(source="x")
    assert isinstance(client, Bus)


def test_join_runs_chains_of_events_published_by_listeners() -> None:
    broker = MemoryBroker()
    a, b = broker.connect(source="a"), broker.connect(source="b")
    out: list[Event] = []
    b.subscribe("step.one", listener=lambda ev: b.publish("step.two", {"n": ev.body["n"] + 1}))
    a.subscribe("step.two", listener=out.append)
    a.publish("step.one", {"n": 1})
    assert out == []  # sync mode: nothing runs before join/process_events
    broker.join()
    assert [e.body["n"] for e in out] == [2]
    assert a.stats.delivered == 1 and b.stats.delivered == 1  # listener calls only


def test_best_effort_overflow_is_dropped_and_counted() -> None:
    broker = MemoryBroker(max_pending=10)
    a, b = broker.connect(source="a"), broker.connect(source="b")
    got: list[Event] = []
    sub = b.subscribe("x.*", listener=got.append)
    a.publish_many("x.y", [{"i": i} for i in range(25)])
    broker.join()
    assert len(got) == 10
    assert sub.stats.dropped == 15 and b.stats.dropped == 15
    assert sub.stats.received == 25


def test_reliable_is_never_dropped_for_a_slow_consumer() -> None:
    broker = MemoryBroker(max_pending=10)
    a, b = broker.connect(source="a"), broker.connect(source="b")
    got: list[Event] = []
    b.subscribe("x.*", delivery="reliable", listener=got.append)
    a.publish_many("x.y", [{"i": i} for i in range(25)], delivery="reliable")
    broker.join()
    assert [e.body["i"] for e in got] == list(range(25))


def test_replay_by_time_on_a_manual_clock() -> None:
    clock = ManualClock(1_000_000.0)
    broker = MemoryBroker(clock=clock)
    a = broker.connect(source="a")
    a.publish("t.x", {"i": 0}, delivery="reliable")
    clock.advance(60)
    a.publish("t.x", {"i": 1}, delivery="reliable")
    got: list[Event] = []
    a.subscribe("t.*", start=1_000_030.0, listener=got.append)
    broker.join()
    assert [e.body["i"] for e in got] == [1]


def test_last_replays_the_last_stored_event() -> None:
    broker = MemoryBroker()
    a = broker.connect(source="a")
    for i in range(3):
        a.publish("l.x", {"i": i}, delivery="reliable")
    got: list[Event] = []
    a.subscribe("l.*", start="last", listener=got.append)
    broker.join()
    assert [e.body["i"] for e in got] == [2]


def test_durable_group_keeps_events_while_no_member_is_connected() -> None:
    broker = MemoryBroker()
    pub = broker.connect(source="p")
    first = broker.connect(source="w1")
    got: list[int] = []
    first.subscribe("jobs.*", delivery="reliable", group="w", listener=lambda ev: got.append(ev.body["i"]))
    pub.publish("jobs.a", {"i": 0}, delivery="reliable")
    broker.join()
    first.close()
    pub.publish_many("jobs.a", [{"i": 1}, {"i": 2}], delivery="reliable")
    broker.join()  # nobody to deliver to: the consumer holds them
    assert got == [0]
    later = broker.connect(source="w2")
    later.subscribe("jobs.*", delivery="reliable", group="w", listener=lambda ev: got.append(ev.body["i"]))
    broker.join()
    assert got == [0, 1, 2]


def test_events_with_a_key_stay_with_one_member() -> None:
    broker = MemoryBroker()
    pub = broker.connect(source="p")
    owners: dict[str, set[str]] = {}
    for name in ("m1", "m2", "m3"):
        c = broker.connect(source=name)
        c.subscribe("k.*", delivery="reliable", group="g",
                    listener=lambda ev, name=name: owners.setdefault(ev.key or "", set()).add(name))
    for i in range(60):
        pub.publish("k.x", {"i": i}, delivery="reliable", key=f"key{i % 6}")
    broker.join()
    assert len(owners) == 6 and all(len(who) == 1 for who in owners.values())


def test_unsubscribe_hands_unhandled_events_to_the_other_member() -> None:
    broker = MemoryBroker()
    pub = broker.connect(source="p")
    m1, m2 = broker.connect(source="m1"), broker.connect(source="m2")
    got1: list[int] = []
    got2: list[int] = []
    s1 = m1.subscribe("u.*", delivery="reliable", group="g", listener=lambda ev: got1.append(ev.body["i"]))
    m2.subscribe("u.*", delivery="reliable", group="g", listener=lambda ev: got2.append(ev.body["i"]))
    pub.publish_many("u.x", [{"i": i} for i in range(10)], delivery="reliable")
    s1.unsubscribe()  # before m1 handled any: its share goes to m2
    broker.join()
    assert got1 == [] and sorted(got2) == list(range(10))


def test_threads_mode_delivers_without_being_driven() -> None:
    broker = MemoryBroker()
    a = broker.connect(source="a")
    b = broker.connect(source="b", mode="threads")
    done = threading.Event()
    threads: set[str] = set()

    def on(ev: Event) -> None:
        threads.add(threading.current_thread().name)
        if ev.body["i"] == 99:
            done.set()

    b.subscribe("th.*", delivery="reliable", listener=on)
    a.publish_many("th.x", [{"i": i} for i in range(100)], delivery="reliable")
    assert done.wait(10)
    broker.join()
    assert threads == {"evfabric-memory-b"}
    b.close()


def test_join_times_out_when_a_listener_never_returns() -> None:
    broker = MemoryBroker()
    a = broker.connect(source="a")
    b = broker.connect(source="b", mode="threads")
    release = threading.Event()
    b.subscribe("slow.*", listener=lambda ev: release.wait(10))
    a.publish("slow.x", {})
    with pytest.raises(ReceiveTimeout, match="1 events still not handled"):
        broker.join(timeout=0.2)
    release.set()
    broker.join()
    b.close()


def test_reserved_topics_are_refused_and_topics_listed() -> None:
    broker = MemoryBroker()
    a = broker.connect(source="a")
    with pytest.raises(ReservedTopic):
        a.publish("cca.x", {})
    a.publish("besteffort.x", {})  # no stream yet: not stored
    a.publish("kept.x", {}, delivery="reliable")
    a.publish("kept.y", {})  # the root exists now: stored though best effort
    assert broker.topics == ["kept"]
    assert [e.topic for e in broker.stored("kept.*")] == ["kept.x", "kept.y"]
    assert a.stats.published == 3 and a.stats.stored == 2


def test_async_client_awaits_coroutine_listeners_in_order() -> None:
    import asyncio

    from evfabric.bus import AsyncBus

    async def main() -> list[int]:
        broker = MemoryBroker()
        pub = broker.connect(source="p")
        client = await broker.connect_async(source="a")
        assert isinstance(client, AsyncBus)
        got: list[int] = []
        failed: list[int] = []

        async def slow(ev: Event) -> None:
            await asyncio.sleep(0.001 if ev.body["i"] % 2 else 0)  # yields to the loop mid-listener
            if ev.body["i"] == 3 and not failed:
                failed.append(3)
                got.append(-1)
                raise RuntimeError("once")
            got.append(ev.body["i"])

        sub = await client.subscribe("a.*", delivery="reliable", listener=slow)
        pub.publish_many("a.x", [{"i": i} for i in range(6)], delivery="reliable")
        await client.publish("a.x", {"i": 6}, delivery="reliable")
        await broker.ajoin()
        assert sub.stats.failed == 1
        await client.close()
        return got

    got = asyncio.run(main())
    assert got == [0, 1, 2, -1, 4, 5, 6, 3]  # in order; the failed one redelivered after those queued


def test_positions_one_event_per_message() -> None:
    """Each stored event is a message of one: positions '<seq>:0', replay from one, index > 0 refused."""
    from evfabric.core.errors import ConfigError

    broker = MemoryBroker()
    c = broker.connect(source="p")
    broker.create_topic("m")
    for i in range(5):
        c.publish("m.a", {"i": i}, delivery="reliable")
    got: list[Event] = []
    c.subscribe("m.*", start="3:0", listener=got.append)
    broker.join()
    assert [e.body["i"] for e in got] == [2, 3, 4] and [str(e.position) for e in got] == ["3:0", "4:0", "5:0"]
    with pytest.raises(ConfigError, match="holds 1 event"):
        c.subscribe("m.*", start="3:1")
