"""Topics as durable streams: admin, replay start positions, retention expiry, partitions and
per-key order in groups, lag."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import AlreadyExists, ConfigError, NotFound

pytestmark = pytest.mark.broker


def test_topic_admin_round_trip(broker_session) -> None:
    root = unique("adm")
    with evfabric.connect(broker_session.url) as c:
        info = c.create_topic(root, max_age=3600, max_msgs=1000, partitions=3, description="jobs")
        assert (info.config.partitions, info.config.max_age, info.config.max_msgs) == (3, 3600, 1000)
        with pytest.raises(AlreadyExists):
            c.create_topic(root)
        assert c.create_topic(root, exist_ok=True).config.partitions == 3
        assert root in [t.config.name for t in c.list_topics()]
        assert c.update_topic(root, max_msgs=5000).config.max_msgs == 5000
        assert c.describe_topic(root).config.description == "jobs"
        with pytest.raises(ConfigError):
            c.create_topic(unique("adm"), partitions=0)
        c.delete_topic(root)
        with pytest.raises(NotFound):
            c.describe_topic(root)


def test_replay_from_earliest_sequence_and_time(broker_session) -> None:
    root = unique("rep")
    with evfabric.connect(broker_session.url, max_batch=1) as c:  # one event per message: exact sequences
        c.create_topic(root)
        for i in range(5):
            c.publish(f"{root}.x", {"i": i}, delivery="reliable")
        c.flush()  # stored: the broker stamped them before it acknowledged, on this host's clock
        middle = time.time()  # after those stamps, before any stamp of what follows
        for i in range(5, 8):
            c.publish(f"{root}.x", {"i": i}, delivery="reliable")

        def collect(**kw) -> list[int]:
            got: list[int] = []
            sub = c.subscribe(f"{root}.*", listener=lambda e: got.append(e.body["i"]), **kw)
            # nothing pending or unacknowledged (acknowledged once the listener returned): all heard
            assert wait_until(lambda: c.lag(sub) == 0 and len(got) > 0), got
            sub.unsubscribe()
            return got

        assert collect(replay=True) == list(range(8))
        assert collect(start=4) == [3, 4, 5, 6, 7]
        assert collect(start=middle) == [5, 6, 7]
        assert collect(start=dt.datetime.fromtimestamp(middle, dt.UTC)) == [5, 6, 7]
        assert collect(start="last") == [7]
        live: list[int] = []
        c.subscribe(f"{root}.*", delivery="reliable", listener=lambda e: live.append(e.body["i"]))
        c.publish(f"{root}.x", {"i": 8}, delivery="reliable")
        assert wait_until(lambda: live == [8])


def test_retention_by_age_expires_events(broker_session) -> None:
    root = unique("ttl")
    with evfabric.connect(broker_session.url) as c:
        c.create_topic(root, max_age=1.0)
        c.publish(f"{root}.x", {"old": True}, delivery="reliable")
        assert c.describe_topic(root).messages == 1
        assert wait_until(lambda: c.describe_topic(root).messages == 0, timeout=5)
        c.publish(f"{root}.x", {"old": False}, delivery="reliable")
        got: list = []
        sub = c.subscribe(f"{root}.*", replay=True, listener=got.append)
        assert wait_until(lambda: len(got) == 1 and c.lag(sub) == 0)
        assert got[0].body == {"old": False}


def test_retention_by_count_keeps_the_newest(broker_session) -> None:
    root = unique("cnt")
    with evfabric.connect(broker_session.url, max_batch=1) as c:
        c.create_topic(root, max_msgs=3)
        for i in range(6):
            c.publish(f"{root}.x", {"i": i}, delivery="reliable")
        got: list[int] = []
        c.subscribe(f"{root}.*", replay=True, listener=lambda e: got.append(e.body["i"]))
        assert wait_until(lambda: got == [3, 4, 5])


def test_keyed_events_keep_order_per_key_across_group_members(broker_session) -> None:
    root = unique("key")
    url = broker_session.url
    keys = [f"job{k}" for k in range(8)]
    with evfabric.connect(url, max_batch=20) as pub, evfabric.connect(url) as m1, evfabric.connect(url) as m2:
        pub.create_topic(root, partitions=4)
        seen: dict[str, list[int]] = {k: [] for k in keys}
        who: dict[str, set[int]] = {k: set() for k in keys}
        lock = threading.Lock()

        def member(tag: int):
            def on_event(ev: evfabric.Event) -> None:
                time.sleep(0.0005)
                with lock:
                    seen[ev.key].append(ev.body["n"])
                    who[ev.key].add(tag)
            return on_event

        s1 = m1.subscribe(f"{root}.*", group="g", delivery="reliable", listener=member(1))
        m2.subscribe(f"{root}.*", group="g", delivery="reliable", listener=member(2))
        assert len(s1.consumers) == 4  # one ordered consumer per partition
        for n in range(60):
            for k in keys:
                pub.submit(f"{root}.step", {"n": n}, delivery="reliable", key=k)
            if n % 10 == 0:
                pub.flush()
        pub.flush()
        assert wait_until(lambda: all(len(v) == 60 for v in seen.values()), timeout=25)
        assert all(v == list(range(60)) for v in seen.values())  # per-key order, each once
        assert any(len(w) == 2 for w in who.values()) or len({t for w in who.values() for t in w}) == 2


def test_lag_is_visible(broker_session) -> None:
    root = unique("lag")
    with evfabric.connect(broker_session.url, max_batch=1) as c:
        c.create_topic(root)
        gate = threading.Event()
        sub = c.subscribe(f"{root}.*", delivery="reliable", listener=lambda e: gate.wait(10), max_inflight=2)
        for i in range(6):
            c.publish(f"{root}.x", {"i": i}, delivery="reliable")
        assert wait_until(lambda: c.lag(sub) == 6)
        gate.set()
        assert wait_until(lambda: c.lag(sub) == 0)


def test_client_through_a_three_server_cluster(cluster3) -> None:
    root = unique("r3")
    with evfabric.connect(cluster3.urls[0]) as pub, evfabric.connect(cluster3.urls[2]) as con:
        pub.create_topic(root, replicas=3)
        got: list = []
        con.subscribe(f"{root}.*", delivery="reliable", listener=got.append)
        for i in range(20):
            pub.publish(f"{root}.x", {"i": i}, delivery="reliable")
        assert wait_until(lambda: len(got) == 20, timeout=15)
        assert pub.describe_topic(root).config.replicas == 3
