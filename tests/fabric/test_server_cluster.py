"""A 3-server JetStream cluster: an R3 stream survives the loss of one server, no acked message lost."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import StreamConfig

from evfabric.fabric.cluster import BrokerCluster

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_cluster_forms_with_meta_leader(cluster3: BrokerCluster) -> None:
    leader = cluster3.meta_leader()
    assert leader in {"n1", "n2", "n3"}
    for s in cluster3.servers:
        assert s.meta_leader() == leader
        routes = s.monitor("routez")
        # each member routes to the two others (possibly several pooled routes per peer)
        assert {r.get("remote_name") for r in routes["routes"]} == {"n1", "n2", "n3"} - {s.name}


async def _publish_acked(js, start: int, n: int) -> list[int]:
    acked = []
    for i in range(start, start + n):
        for _ in range(50):  # a leader change makes a few publishes time out; retry them
            try:
                await js.publish("orders.new", str(i).encode(), timeout=2, headers={"Nats-Msg-Id": str(i)})
                acked.append(i)
                break
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError):
                await asyncio.sleep(0.2)
    return acked


def test_r3_stream_survives_loss_of_one_server(cluster3: BrokerCluster) -> None:
    async def go() -> tuple[list[int], list[int], str]:
        nc = await nats.connect(cluster3.urls, connect_timeout=2, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"], num_replicas=3, storage="file"))
        acked = await _publish_acked(js, 0, 100)
        # kill the stream leader: the worst case for the server we lose
        leader = (await js.stream_info("ORDERS")).cluster.leader
        victim = next(i for i, s in enumerate(cluster3.servers) if s.name == leader)
        cluster3.kill(victim)
        acked += await _publish_acked(js, 100, 100)
        info = await js.stream_info("ORDERS")
        sub = await js.pull_subscribe("orders.>", durable="reader", stream="ORDERS")
        got: list[int] = []
        while len(got) < info.state.messages:
            for m in await sub.fetch(50, timeout=5):
                got.append(int(m.data))
                await m.ack()
        await nc.close()
        return acked, got, info.cluster.leader

    acked, got, new_leader = asyncio.run(go())
    assert len(acked) == 200
    assert set(acked) <= set(got)  # no acknowledged message lost
    assert len(got) == len(set(got))  # de-duplicated by Nats-Msg-Id
    assert new_leader is not None


def test_killed_member_rejoins_and_catches_up(cluster3: BrokerCluster) -> None:
    async def publish(n: int) -> None:
        nc = await nats.connect(cluster3.urls, connect_timeout=2, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name="CATCH", subjects=["catch.>"], num_replicas=3))
        for i in range(n):
            await js.publish("catch.x", str(i).encode())
        await nc.close()

    asyncio.run(publish(10))
    cluster3.kill(2)
    asyncio.run(publish(10))
    cluster3.restart(2)

    def replica_msgs() -> int:
        # the restarted server's own replica, as its /jsz reports it (not the leader's view)
        jsz = cluster3[2].monitor("jsz?streams=1")
        for acc in jsz.get("account_details", []):
            for st in acc.get("stream_detail", []):
                if st["name"] == "CATCH":
                    return st["state"]["messages"]
        return -1

    deadline = time.monotonic() + 15
    while replica_msgs() != 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replica_msgs() == 20
