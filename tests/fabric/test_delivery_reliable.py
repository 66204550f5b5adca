"""Reliable delivery over JetStream: stored before publish returns, acked after listeners,
redelivered on failure (duplicates dropped by id), dead-lettered after max_deliver; the hybrid
policy; and kill -9 of the broker in the middle of a reliable stream."""

from __future__ import annotations

import threading
import time

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import NotFound

pytestmark = pytest.mark.broker


def test_reliable_publish_is_stored_before_returning(broker_session) -> None:
    root = unique("rel")
    with evfabric.connect(broker_session.url) as c:
        ev = c.publish(f"{root}.a", {"n": 1}, delivery="reliable")
        assert ev.delivery == "reliable"
        assert c.stats.stored == 1  # the broker acknowledged before publish returned
        info = c.describe_topic(root)  # created on first reliable use (auto_topics)
        assert info.messages == 1 and info.config.name == root


def test_a_reliable_subscription_under_a_users_namespace_creates_that_namespaces_topic(broker_session) -> None:
    name = unique("u")
    with evfabric.connect(broker_session.url) as c:
        got: list = []
        c.subscribe(f"users.{name}.*", delivery="reliable", listener=got.append)  # no topic yet: auto-created
        assert c.describe_topic(f"users.{name}").config.name == f"users.{name}"  # not 'users'
        c.publish(f"users.{name}.x", {"n": 1}, delivery="reliable")
        assert wait_until(lambda: len(got) == 1)


def test_no_auto_topics_means_not_found(broker_session) -> None:
    with evfabric.connect(broker_session.url, auto_topics=False) as c:
        with pytest.raises(NotFound):
            c.publish(f"{unique('none')}.a", {}, delivery="reliable", timeout=5)


def test_listener_failure_redelivers_only_failed_events(broker_session) -> None:
    root = unique("redo")
    with evfabric.connect(broker_session.url, max_batch=100) as c:
        calls: dict[int, int] = {}
        lock = threading.Lock()

        def flaky(ev: evfabric.Event) -> None:
            with lock:
                calls[ev.body["i"]] = calls.get(ev.body["i"], 0) + 1
                if ev.body["i"] % 10 == 3 and calls[ev.body["i"]] < 3:
                    raise RuntimeError("not yet")

        sub = c.subscribe(f"{root}.*", delivery="reliable", listener=flaky, redeliver_delay=0.01)
        c.publish_many(f"{root}.x", [{"i": i} for i in range(50)], delivery="reliable")
        c.flush()
        assert wait_until(lambda: len(calls) == 50 and all(calls[i] == 3 for i in range(3, 50, 10)))
        assert wait_until(lambda: c.lag(sub) == 0)
        # the events that did not fail ran once although their batch came back twice
        assert all(n == 1 for i, n in calls.items() if i % 10 != 3)
        assert sub.stats.skipped >= 45 * 2 - 5  # handled events of a redelivered message are skipped
        assert sub.stats.failed == 10


def test_dead_letter_after_max_deliver(broker_session) -> None:
    root = unique("dead")
    with evfabric.connect(broker_session.url) as c:
        letters: list = []
        c.subscribe(f"cca.deadletter.{root}.*", delivery="reliable", listener=letters.append)
        attempts: list = []

        def poison(ev: evfabric.Event) -> None:
            attempts.append(ev.id)
            if ev.body.get("poison"):
                raise ValueError("cannot digest")

        ok: list = []
        sub = c.subscribe(f"{root}.*", delivery="reliable", max_deliver=3, redeliver_delay=0.01)
        sub.add_listener(poison)
        sub.add_listener(ok.append)
        bad = c.publish(f"{root}.x", {"poison": True}, delivery="reliable")
        c.publish(f"{root}.x", {"poison": False}, delivery="reliable")
        assert wait_until(lambda: len(letters) == 1)
        assert attempts.count(bad.id) == 3
        body = letters[0].body
        assert letters[0].topic == f"cca.deadletter.{root}.x"
        assert body["event"]["id"] == bad.id and body["attempts"] == 3 and "cannot digest" in body["error"]
        stored = next(e for e in ok if e.id == bad.id).position
        assert body["position"] == str(stored) and "packed_position" not in body["event"]  # where to replay from
        # as in EventService, a raising listener does not stop the others: each attempt reaches them
        assert sorted(e.body["poison"] for e in ok) == [False, True, True, True]
        assert wait_until(lambda: c.lag(sub) == 0)
        assert sub.stats.dead_lettered == 1


def test_hybrid_policy_per_topic_per_call_and_rule(broker_session) -> None:
    root = unique("hyb")
    with evfabric.connect(broker_session.url) as c:
        c.set_delivery(f"{root}.audit.*", "reliable")
        c.add_delivery_rule("body.severity == 'critical'", "reliable")
        modes = {
            "plain": c.publish(f"{root}.log.x", {"severity": "info"}).delivery,
            "topic": c.publish(f"{root}.audit.x", {"severity": "info"}).delivery,
            "rule": c.publish(f"{root}.log.x", {"severity": "critical"}).delivery,
            "call": c.publish(f"{root}.audit.x", {"severity": "info"}, delivery="best_effort").delivery,
        }
        assert modes == {"plain": "best_effort", "topic": "reliable", "rule": "reliable", "call": "best_effort"}
        assert c.stats.stored == 2


def test_group_members_share_reliable_work(broker_session) -> None:
    root = unique("grp")
    url = broker_session.url
    with evfabric.connect(url) as pub, evfabric.connect(url) as m1, evfabric.connect(url) as m2:
        pub.create_topic(root)
        got1: list = []
        got2: list = []
        m1.subscribe(f"{root}.*", group="workers", delivery="reliable", listener=lambda e: (got1.append(e.body["i"]), time.sleep(0.002)))
        m2.subscribe(f"{root}.*", group="workers", delivery="reliable", listener=lambda e: (got2.append(e.body["i"]), time.sleep(0.002)))
        for i in range(400):
            pub.submit(f"{root}.job", {"i": i}, delivery="reliable")
            if i % 50 == 0:
                pub.flush()  # several batches, so that both members get some
        pub.flush()
        assert wait_until(lambda: len(got1) + len(got2) >= 400, timeout=20)
        assert sorted(got1 + got2) == list(range(400))  # each exactly once
        assert got1 and got2


def test_kill_9_mid_stream_every_acknowledged_event_arrives(broker) -> None:
    """The broker dies (SIGKILL) while a reliable stream flows; after restart the publisher re-sends
    what was not acknowledged, the consumer resumes, duplicates are dropped by id."""
    root = unique("k9")
    n = 3000
    with evfabric.connect(broker.url, source="producer", ack_timeout=0.5) as pub, \
            evfabric.connect(broker.url, source="consumer") as con:
        pub.create_topic(root)
        got: list[int] = []
        lock = threading.Lock()

        def on_event(ev: evfabric.Event) -> None:
            with lock:
                got.append(ev.body["i"])

        sub = con.subscribe(f"{root}.*", delivery="reliable", name="k9", ack_wait=2.0, listener=on_event)
        tickets = []
        for i in range(n):
            tickets.append(pub.submit(f"{root}.e", {"i": i}, delivery="reliable"))
            if i == n // 3:
                pub.flush()
                broker.kill()  # kill -9
            if i == n // 2:
                broker.restart()
        for t in tickets:
            t.wait(30)  # every publish is acknowledged in the end
        # all heard, and nothing stored is pending or unacknowledged: no copy can come any more
        assert wait_until(lambda: len(set(got)) == n and con.lag(sub) == 0, timeout=30), (len(set(got)), len(got))
        assert sorted(set(got)) == list(range(n))
        assert len(got) == n  # redelivered copies were dropped by id
        assert pub.stats.reconnects >= 1 and con.stats.reconnects >= 1
        assert pub.describe_topic(root).messages >= 1
        assert sub.stats.handed == n
