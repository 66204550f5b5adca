"""The edge through the evfabric client: producers at a cut-off leaf keep publishing reliably,
and a hub consumer of the followed topic gets everything, once, after the link heals."""

from __future__ import annotations

import pytest
from _fabric_helpers import wait_until

import evfabric
from evfabric.fabric.edge import follow_edge_topic
from evfabric.testing.leaf import HubAndLeaf

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
        sub = hub.subscribe("site.*", delivery="reliable", start="earliest", listener=lambda e: got.append(e.body["i"]))

        def stored() -> tuple[int, int]:
            return edge.describe_topic("site").messages, hub.describe_topic("site").messages

        def caught_up() -> bool:
            """The hub stores what the edge stores, and its consumer acknowledged all of it (the
            listener returned for each): nothing more will be delivered."""
            at_edge, at_hub = stored()
            return at_hub == at_edge and hub.lag(sub) == 0

        for i in range(3):
            edge.publish("site.temp", {"i": i}, delivery="reliable")
        edge.flush()
        assert wait_until(lambda: len(got) >= 3 and caught_up())
        assert sorted(got) == [0, 1, 2]
        before = stored()

        leaf_pair.cut()
        assert wait_until(lambda: not leaf_pair.leaf_connected())
        for i in range(3, 8):  # the edge keeps storing while cut off
            ev = edge.publish("site.temp", {"i": i}, delivery="reliable")
            assert ev.delivery == "reliable"
        edge.flush()
        at_edge, at_hub = stored()
        assert at_edge > before[0] and at_hub == before[1]  # stored at the edge, not crossed to the hub
        assert sorted(got) == [0, 1, 2]

        leaf_pair.heal()
        assert wait_until(lambda: len(got) >= 8 and caught_up(), timeout=30), (stored(), got)
        assert sorted(got) == list(range(8))  # everything, once
