"""Fabric semantics, the same scenarios on the in-memory broker and on a real nats-server."""

from __future__ import annotations

import threading

import pytest

from evfabric.core.event import Event


def test_best_effort_wildcards_in_order_per_topic(fabric) -> None:
    root = fabric.root("be")
    a, b = fabric.connect("a"), fabric.connect("b")
    got: list[Event] = []
    sub = b.subscribe(f"{root}.*", delivery="best_effort", listener=got.append)
    probe = f"{root}.probe"

    def ready() -> bool:  # best effort reaches only a route the broker has: probe until one arrives
        a.publish(probe, {"i": -1})
        return any(e.topic == probe for e in got)

    # (on a loaded machine a real broker was seen to miss a publisher's first events although the
    # subscription had returned: sent=5, received=0 in 2 of 40 runs)
    assert fabric.settle(ready)
    for i in range(5):
        a.publish(f"{root}.x.y" if i % 2 else f"{root}.x", {"i": i})
    assert fabric.settle(lambda: len([e for e in got if e.topic != probe]) == 5), (a.stats, b.stats, sub.stats)
    got = [e for e in got if e.topic != probe]
    assert [e.body["i"] for e in got if e.topic == f"{root}.x"] == [0, 2, 4]  # order is kept per topic
    assert [e.body["i"] for e in got if e.topic == f"{root}.x.y"] == [1, 3]
    assert {e.source for e in got} == {"a"}


def test_reliable_failing_listener_is_redelivered(fabric) -> None:
    root = fabric.root("redo")
    a, b = fabric.connect("a"), fabric.connect("b")
    calls: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(ev: Event) -> None:
        with lock:
            i = ev.body["i"]
            calls[i] = calls.get(i, 0) + 1
            if i == 3 and calls[i] < 2:
                raise RuntimeError("not yet")

    sub = b.subscribe(f"{root}.*", delivery="reliable", listener=flaky, redeliver_delay=0.01)
    for i in range(10):
        a.publish(f"{root}.x", {"i": i}, delivery="reliable")
    assert fabric.settle(lambda: len(calls) == 10 and calls[3] == 2)
    assert all(n == 1 for i, n in calls.items() if i != 3)
    assert sub.stats.failed == 1


def test_dead_letter_after_max_deliver(fabric) -> None:
    root = fabric.root("dead")
    a, b = fabric.connect("a"), fabric.connect("b")
    letters: list[Event] = []
    b.subscribe(f"cca.deadletter.{root}.*", delivery="reliable", listener=letters.append)
    attempts: list[str] = []

    def poison(ev: Event) -> None:
        attempts.append(ev.id)
        if ev.body["poison"]:
            raise ValueError("cannot digest")

    sub = b.subscribe(f"{root}.*", delivery="reliable", max_deliver=3, redeliver_delay=0.01, listener=poison)
    bad = a.publish(f"{root}.x", {"poison": True}, delivery="reliable")
    good = a.publish(f"{root}.x", {"poison": False}, delivery="reliable")
    assert fabric.settle(lambda: len(letters) == 1 and good.id in attempts)
    assert attempts.count(bad.id) == 3 and attempts.count(good.id) == 1
    letter = letters[0]
    assert letter.topic == f"cca.deadletter.{root}.x"
    assert letter.body["event"]["id"] == bad.id and letter.body["attempts"] == 3
    assert "cannot digest" in letter.body["error"]
    assert sub.stats.dead_lettered == 1


def test_group_members_share_events(fabric) -> None:
    root = fabric.root("grp")
    pub, m1, m2 = fabric.connect("p"), fabric.connect("m1"), fabric.connect("m2")
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def member(name: str):
        def on(ev: Event) -> None:
            with lock:
                seen.append((name, ev.body["i"]))
        return on

    m1.subscribe(f"{root}.*", delivery="reliable", group="workers", listener=member("m1"))
    m2.subscribe(f"{root}.*", delivery="reliable", group="workers", listener=member("m2"))
    for i in range(40):
        pub.publish(f"{root}.job", {"i": i}, delivery="reliable")
    assert fabric.settle(lambda: len({i for _, i in seen}) == 40)
    assert sorted(i for _, i in seen) == list(range(40))  # each event to exactly one member


def test_replay_earliest_and_new(fabric) -> None:
    root = fabric.root("rep")
    a, b = fabric.connect("a"), fabric.connect("b")
    old = [a.publish(f"{root}.x", {"i": i}, delivery="reliable") for i in range(4)]
    everything: list[Event] = []
    fresh: list[Event] = []
    b.subscribe(f"{root}.*", start="earliest", listener=everything.append)
    b.subscribe(f"{root}.*", start="new", listener=fresh.append)
    marker = a.publish(f"{root}.x", {"i": 99}, delivery="reliable")
    assert fabric.settle(lambda: len(everything) == 5 and len(fresh) >= 1)
    assert [e.id for e in everything] == [e.id for e in old] + [marker.id]
    assert [e.id for e in fresh] == [marker.id]


def test_replay_from_sequence(fabric) -> None:
    root = fabric.root("seq")
    a, b = fabric.connect("a"), fabric.connect("b")
    sent = [a.publish(f"{root}.x", {"i": i}, delivery="reliable") for i in range(5)]
    got: list[Event] = []
    b.subscribe(f"{root}.x", start=3, listener=got.append)
    assert fabric.settle(lambda: len(got) == 3)
    assert [e.id for e in got] == [e.id for e in sent[2:]]


def test_named_subscription_resumes_where_it_left_off(fabric) -> None:
    root = fabric.root("dur")
    a = fabric.connect("a")
    first = fabric.connect("b1")
    got: list[Event] = []
    # ack_wait: a real broker may have handed events to the closed client's last pull request;
    # they come back to the durable consumer after ack_wait (the memory broker: at once)
    first.subscribe(f"{root}.*", delivery="reliable", name=f"{root}-reader", listener=got.append, ack_wait=1.0)
    for i in range(3):
        a.publish(f"{root}.x", {"i": i}, delivery="reliable")
    assert fabric.settle(lambda: len(got) == 3)
    first.close()
    fabric.clients.remove(first)
    later = [a.publish(f"{root}.x", {"i": i}, delivery="reliable") for i in range(3, 5)]
    again: list[Event] = []
    second = fabric.connect("b2")
    second.subscribe(f"{root}.*", delivery="reliable", name=f"{root}-reader", listener=again.append, ack_wait=1.0)
    later_ids = {e.id for e in later}
    assert fabric.settle(lambda: later_ids <= {e.id for e in again})
    # at least once: besides the new events, only an old one whose ack was still in flight may come again
    assert {e.id for e in again} - later_ids <= {e.id for e in got}
    if fabric.kind == "memory":
        assert [e.id for e in again] == [e.id for e in later]


def test_filter_applies_before_listeners(fabric) -> None:
    root = fabric.root("flt")
    a, b = fabric.connect("a"), fabric.connect("b")
    got: list[Event] = []
    b.subscribe(f"{root}.*", "body.n > 2", delivery="reliable", listener=got.append)
    for n in range(6):
        a.publish(f"{root}.x", {"n": n}, delivery="reliable")
    assert fabric.settle(lambda: len(got) == 3)
    assert [e.body["n"] for e in got] == [3, 4, 5]


@pytest.mark.parametrize("start", ["sometime", 0, -1])
def test_bad_start_is_refused(fabric, start: object) -> None:
    from evfabric.core.errors import ConfigError

    b = fabric.connect("b")
    with pytest.raises(ConfigError):
        b.subscribe(f"{fabric.root('bad')}.*", start=start)
    assert b.subscriptions == []  # nothing half-made
