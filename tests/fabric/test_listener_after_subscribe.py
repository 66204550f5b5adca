"""A listener added after ``subscribe()`` (no listener given) replaces the early pull buffer:
only the user's listeners are called and counted, and a reliable event is settled by what they
do, not acknowledged by a buffer nobody reads."""

from __future__ import annotations

import pytest
from _fabric_helpers import unique, wait_until

import evfabric

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_process_events_counts_the_users_listener_calls_only(broker_session) -> None:
    topic = f"{unique('late')}.x"
    with evfabric.connect(broker_session.url, mode="sync") as c, evfabric.connect(broker_session.url) as p:
        sub = c.subscribe(topic)
        seen: list[evfabric.Event] = []
        sub.add_listener(seen.append)
        p.publish(topic, {"i": 1})
        p.flush()
        assert wait_until(lambda: sub.stats.received == 1)
        assert c.process_events() == 1 and len(seen) == 1 and sub.listeners == (seen.append,)
        p.publish(topic, {"i": 2})
        p.flush()
        assert wait_until(lambda: sub.stats.received == 2)
        assert c.process_events() == 1 and [e.body["i"] for e in seen] == [1, 2]


def test_a_failing_listener_added_later_gets_the_reliable_event_redelivered(broker_session) -> None:
    root = unique("laterel")
    with evfabric.connect(broker_session.url) as c:
        c.create_topic(root)
        sub = c.subscribe(f"{root}.x", delivery="reliable", max_deliver=2, redeliver_delay=0.05)
        tries: list[int] = []

        def fails(ev: evfabric.Event) -> None:
            tries.append(ev.body["i"])
            raise RuntimeError("not yet")

        sub.add_listener(fails)
        c.publish(f"{root}.x", {"i": 7}, delivery="reliable")
        assert wait_until(lambda: sub.stats.dead_lettered == 1, timeout=20), sub.stats
        assert tries == [7, 7]  # no buffer acknowledged it behind the listener's back
