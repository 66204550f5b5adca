"""A lost cluster member: an R3 topic keeps taking reliable events through evfabric clients while
one of three servers is killed (-9) and restarted; nothing acknowledged is lost."""

from __future__ import annotations

import threading

import pytest
from _fabric_helpers import unique, wait_until

import evfabric

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]


def test_r3_topic_loses_a_member_mid_stream(cluster3) -> None:
    n = 2000
    root = unique("r3")
    urls = cluster3.urls
    with evfabric.connect(urls, source="p", publish_timeout=30.0) as pub, \
            evfabric.connect(urls[1:] + urls[:1], source="s") as con:
        pub.create_topic(root, replicas=3)
        got: set[int] = set()
        calls = [0]
        lock = threading.Lock()

        def on_event(ev: evfabric.Event) -> None:
            with lock:
                got.add(ev.body["i"])
                calls[0] += 1

        sub = con.subscribe(f"{root}.*", delivery="reliable", name="r3", ack_wait=3.0, listener=on_event)
        tickets = []
        for i in range(n):
            tickets.append(pub.submit(f"{root}.e", {"i": i}, delivery="reliable"))
            if i == n // 3:
                pub.flush(30)
                cluster3.kill(0)  # a member (the first URL both clients know) dies
            if i == 2 * n // 3:
                cluster3.restart(0)
        for t in tickets:
            t.wait(30)  # every publish ends acknowledged (retried through the survivors)
        assert wait_until(lambda: len(got) == n, timeout=30), n - len(got)
        assert wait_until(lambda: con.lag(sub) == 0, timeout=15)
        assert calls[0] == n, f"{calls[0] - n} delivered twice"
