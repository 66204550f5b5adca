"""Topics share their namespace's stream (issue #13, scale): replay, groups, partitions and lag
stay per topic; deleting one topic purges only its events; topics survive a restart; the
namespace's settings are refused when a topic asks for others."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.core.errors import AlreadyExists, ConfigError, NotFound

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def _collect(c: Any, pattern: str, **kw: Any) -> list[Any]:
    got: list[Any] = []
    sub = c.subscribe(pattern, listener=lambda e: got.append(e), **kw)
    wait_until(lambda: c.lag(sub) == 0 and len(got) > 0, timeout=10)
    time.sleep(0.1)
    sub.unsubscribe()
    return got


def test_topics_of_a_namespace_share_one_stream(broker_session: Any) -> None:
    ns = unique("shr")
    with evfabric.connect(broker_session.url, max_batch=1) as c:
        a = c.create_topic(f"{ns}.a")
        b = c.create_topic(f"{ns}.b", partitions=3, description="bee")
        assert a.stream == b.stream and a.shared and b.shared
        assert (b.config.partitions, b.config.description) == (3, "bee")
        for i in range(4):
            c.publish(f"{ns}.a.x", {"t": "a", "i": i}, delivery="reliable")
        for i in range(6):
            c.publish(f"{ns}.b.y", {"t": "b", "i": i}, delivery="reliable", key=f"k{i}")
        da, db = c.describe_topic(f"{ns}.a"), c.describe_topic(f"{ns}.b")
        assert (da.messages, db.messages) == (4, 6)
        assert da.first_seq < da.last_seq < db.last_seq  # the stream's sequences, across its topics
        # replay reads one topic only
        assert [e.body["i"] for e in _collect(c, f"{ns}.a.*", replay=True)] == [0, 1, 2, 3]
        assert {e.body["t"] for e in _collect(c, f"{ns}.b.*", replay=True)} == {"b"}
        # a start sequence inside the shared stream still reads only the topic's events from there
        assert [e.body["i"] for e in _collect(c, f"{ns}.a.*", start=da.first_seq + 2)] == [2, 3]
        # a pattern over the namespace reaches both topics (one consumer each)
        both = _collect(c, f"{ns}.*", replay=True)
        assert sorted(e.body["t"] for e in both) == ["a"] * 4 + ["b"] * 6
        # topics do not nest, in a namespace as elsewhere
        with pytest.raises(AlreadyExists):
            c.create_topic(f"{ns}.a.deeper")
        with pytest.raises(AlreadyExists):
            c.create_topic(ns)


def test_groups_partitions_and_lag_stay_per_topic(broker_session: Any) -> None:
    ns = unique("grp")
    url = broker_session.url
    with evfabric.connect(url, max_batch=1) as c, evfabric.connect(url) as m2:
        c.create_topic(f"{ns}.slow")
        c.create_topic(f"{ns}.keyed", partitions=4)
        gate = threading.Event()
        slow = c.subscribe(f"{ns}.slow.*", delivery="reliable", listener=lambda e: gate.wait(10), max_inflight=2)
        seen: dict[str, list[int]] = {}
        lock = threading.Lock()

        def on_keyed(ev: evfabric.Event) -> None:
            with lock:
                seen.setdefault(ev.key or "", []).append(ev.body["n"])

        s1 = c.subscribe(f"{ns}.keyed.*", group="g", delivery="reliable", listener=on_keyed)
        m2.subscribe(f"{ns}.keyed.*", group="g", delivery="reliable", listener=on_keyed)
        assert len(s1.consumers) == 4  # one ordered consumer per partition of this topic
        for i in range(5):
            c.publish(f"{ns}.slow.x", {"i": i}, delivery="reliable")
        for n in range(20):
            for k in ("k1", "k2", "k3"):
                c.submit(f"{ns}.keyed.step", {"n": n}, delivery="reliable", key=k)
        c.flush()
        assert wait_until(lambda: sum(len(v) for v in seen.values()) == 60, timeout=20)
        assert all(v == list(range(20)) for v in seen.values())  # per-key order
        assert c.lag(s1) == 0  # the keyed topic's group is done ...
        assert wait_until(lambda: c.lag(slow) == 5)  # ... while the other topic's lag is its own
        gate.set()
        assert wait_until(lambda: c.lag(slow) == 0)


def test_deleting_one_topic_purges_only_its_events(broker_session: Any) -> None:
    ns = unique("del")
    with evfabric.connect(broker_session.url, max_batch=1) as c:
        c.create_topic(f"{ns}.gone")
        c.create_topic(f"{ns}.kept")
        for i in range(3):
            c.publish(f"{ns}.gone.x", {"i": i}, delivery="reliable")
            c.publish(f"{ns}.kept.x", {"i": i}, delivery="reliable")
        stream = c.describe_topic(f"{ns}.kept").stream
        c.delete_topic(f"{ns}.gone")
        with pytest.raises(NotFound):
            c.describe_topic(f"{ns}.gone")
        kept = c.describe_topic(f"{ns}.kept")
        assert kept.stream == stream and kept.messages == 3
        assert [e.body["i"] for e in _collect(c, f"{ns}.kept.*", replay=True)] == [0, 1, 2]
        names = [t.config.name for t in c.list_topics()]
        assert f"{ns}.kept" in names and f"{ns}.gone" not in names
        c.create_topic(f"{ns}.gone")  # the name is free again, and holds nothing old
        assert c.describe_topic(f"{ns}.gone").messages == 0
        c.delete_topic(f"{ns}.gone")
        c.delete_topic(f"{ns}.kept")  # the last topic: the namespace's stream goes with it
        assert stream not in [t.stream for t in c.list_topics()]


def test_namespace_settings_are_shared_and_say_so(broker_session: Any) -> None:
    ns = unique("set")
    with evfabric.connect(broker_session.url) as c:
        c.create_topic(f"{ns}.a", max_age=3600)
        with pytest.raises(ConfigError, match=r"namespace .* has max_age=3600"):
            c.create_topic(f"{ns}.b")  # other retention: refused, naming the namespace's
        c.create_topic(f"{ns}.b", max_age=3600)
        assert c.update_topic(f"{ns}.b", partitions=2, description="d").config.partitions == 2  # per topic
        with pytest.raises(ConfigError, match="shared with 1 other topic"):
            c.update_topic(f"{ns}.b", max_age=60)
        c.delete_topic(f"{ns}.a")
        assert c.update_topic(f"{ns}.b", max_age=60).config.max_age == 60  # alone now: allowed


def test_topics_survive_a_restart(broker: Any) -> None:
    ns = unique("rst")
    with evfabric.connect(broker.url, max_batch=1) as c:
        c.create_topic(f"{ns}.a", partitions=2)
        c.create_topic(f"{ns}.b")
        c.publish(f"{ns}.a.x", {"i": 1}, delivery="reliable", key="k")
        c.publish(f"{ns}.b.x", {"i": 2}, delivery="reliable")
    broker.restart()
    with evfabric.connect(broker.url) as c:
        assert c.describe_topic(f"{ns}.a").config.partitions == 2
        assert [e.body["i"] for e in _collect(c, f"{ns}.a.*", replay=True)] == [1]
        assert [e.body["i"] for e in _collect(c, f"{ns}.b.*", replay=True)] == [2]


def test_automatic_topics_take_their_namespace_settings(broker_session: Any) -> None:
    """A topic made on first use (auto_topics) joins an existing namespace stream as it is, even
    one made by hand (no catalog record), instead of refusing the automatic default settings."""
    import asyncio

    import nats

    from evfabric.fabric.streams import TopicConfig

    raw_ns = unique("hand")

    async def by_hand() -> None:
        nc = await nats.connect(broker_session.url)
        await nc.jetstream().add_stream(TopicConfig(raw_ns, max_msgs=50).stream_config())
        await nc.close()

    asyncio.run(by_hand())
    with evfabric.connect(broker_session.url) as c:
        got: list[Any] = []
        c.subscribe(f"{raw_ns}.*", delivery="reliable", listener=got.append)  # auto: adopts max_msgs=50
        assert c.describe_topic(raw_ns).config.max_msgs == 50
        c.publish(f"{raw_ns}.x", {"n": 1}, delivery="reliable")
        assert wait_until(lambda: len(got) == 1)
