"""The edge through the evfabric client: producers at a cut-off leaf keep publishing reliably,
and a hub consumer of the followed topic gets everything, once, after the link heals."""

from __future__ import annotations

import time

import pytest

import evfabric
from evfabric.fabric.edge import follow_edge_topic
from evfabric.fabric.leaf import HubAndLeaf

from _fabric_helpers import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_edge_topic_followed_from_the_hub_survives_a_cut(leaf_pair: HubAndLeaf) -> None:
    leaf_pair.wait_connected()
    assert leaf_pair.leaf is not None
    with evfabric.connect(leaf_pair.leaf.url, source="edge-probe") as edge, \
            evfabric.connect(leaf_pair.hub.url, source="hub-analysis") as hub:
        edge.create_topic("site")
        info = follow_edge_topic(hub, "site", leaf_pair.leaf_domain)
        assert info.config.name == "site"
        got: list[int] = []
        hub.subscribe("site.*", delivery="reliable", start="earliest", listener=lambda e: got.append(e.body["i"]))
        for i in range(3):
            edge.publish("site.temp", {"i": i}, delivery="reliable")
        assert wait_until(lambda: sorted(got) == [0, 1, 2])

        leaf_pair.cut()
        assert wait_until(lambda: not leaf_pair.leaf_connected())
        for i in range(3, 8):  # the edge keeps storing while cut off
            ev = edge.publish("site.temp", {"i": i}, delivery="reliable")
            assert ev.delivery == "reliable"
        time.sleep(1.0)
        assert sorted(got) == [0, 1, 2]  # nothing crosses a cut link

        leaf_pair.heal()
        assert wait_until(lambda: len(got) >= 8, timeout=20)
        time.sleep(0.5)
        assert sorted(got) == list(range(8))  # everything, once
