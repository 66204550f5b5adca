"""A best-effort subscriber cut off from the broker (its link down, as in a slow-consumer cut):
what it missed is counted exactly, also from a publisher that began while it was away; a
subscriber that joins late counts nothing that was published before it listened."""

from __future__ import annotations

import pytest
from _fabric_helpers import unique, wait_until

import evfabric
from evfabric.testing import running_broker
from evfabric.testing.relay import TcpRelay

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_a_publisher_that_began_during_the_cut_has_its_losses_counted(tmp_path) -> None:
    root = unique("cut")
    with running_broker(tmp_path / "b") as srv, TcpRelay(("127.0.0.1", srv.settings.port)) as relay, \
            evfabric.connect(f"nats://127.0.0.1:{relay.port}", source="away", reconnect_wait=0.1) as con, \
            evfabric.connect(srv.url, source="early") as early:
        got: list[int] = []
        reports: list[int] = []
        sub = con.subscribe(f"{root}.*", listener=lambda ev: got.append(ev.body["i"]))
        con.subscribe("cca.fabric.dropped", listener=lambda ev: reports.append(ev.body["count"]))
        sent = 0
        for i in range(100):  # a sequence the subscriber sees begin
            early.publish(f"{root}.x", {"i": i})
            sent += 1
        early.flush(10)
        assert wait_until(lambda: len(got) == 100)
        relay.cut()
        assert wait_until(lambda: not con.is_connected)
        with evfabric.connect(srv.url, source="late") as late:  # begins while the subscriber is away

            def both(n: int, base: int) -> int:
                """``n`` events from each publisher, flushed: how many were sent."""
                for i in range(n):
                    early.publish(f"{root}.x", {"i": base + i})
                    late.publish(f"{root}.y", {"i": 10 * base + i})
                early.flush(10)
                late.flush(10)
                return 2 * n

            sent += both(1000, 1000)
            relay.heal()
            assert wait_until(lambda: con.is_connected, 20)
            con.flush(10)  # the broker has the subscription again
            sent += both(10, 2000)
            assert wait_until(lambda: len(got) + sub.stats.dropped == sent and sum(reports) == sub.stats.dropped), \
                (sent, len(got), sub.stats.dropped, sum(reports))
        assert len(got) == 120 and sub.stats.dropped == 2000  # nothing uncounted, nothing counted twice


def test_a_late_subscriber_counts_nothing_published_before_it_listened(tmp_path) -> None:
    root = unique("late")
    with running_broker(tmp_path / "b") as srv, evfabric.connect(srv.url, source="p") as pub, \
            evfabric.connect(srv.url, source="s") as con:
        for i in range(500):
            pub.publish(f"{root}.x", {"i": i})
        pub.flush(10)
        got: list[int] = []
        sub = con.subscribe(f"{root}.*", listener=lambda ev: got.append(ev.body["i"]))
        for i in range(10):
            pub.publish(f"{root}.x", {"i": 500 + i})
        pub.flush(10)
        assert wait_until(lambda: len(got) == 10)
        assert got == list(range(500, 510)) and sub.stats.dropped == 0
