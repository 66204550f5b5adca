"""A 3-server JetStream cluster: an R3 stream survives the loss of one server, no acked message lost."""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from evfabric.broker.cluster import BrokerCluster
from evfabric.broker.server import BrokerServer
from evfabric.testing import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_cluster_forms_with_meta_leader(cluster3: BrokerCluster) -> None:
    leader = cluster3.meta_leader()
    assert leader in {"n1", "n2", "n3"}
    for s in cluster3.servers:
        assert s.meta_leader() == leader

        def peers(srv: BrokerServer = s) -> set[str]:
            return {r.get("remote_name") for r in srv.monitor("routez")["routes"]}
        # each member routes to the two others (possibly several pooled routes per peer); a pooled
        # route may still be coming up when the meta leader is known: wait for it, bounded
        assert wait_until(lambda p=peers, me=s.name: p() == {"n1", "n2", "n3"} - {me}, timeout=10), peers()


_TRANSIENT = (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError)


async def _retry(call, tries: int = 40):
    """Run a JetStream API call, retrying while the cluster elects new leaders after a loss."""
    for attempt in range(tries):
        try:
            return await call()
        except _TRANSIENT:
            if attempt + 1 == tries:
                raise
            await asyncio.sleep(0.25)


async def _publish_acked(js, start: int, n: int, subject: str = "orders.new") -> list[int]:
    acked = []
    for i in range(start, start + n):
        for _ in range(50):  # a leader change makes a few publishes time out; retry them
            try:
                await js.publish(subject, str(i).encode(), timeout=2, headers={"Nats-Msg-Id": str(i)})
                acked.append(i)
                break
            except _TRANSIENT:
                await asyncio.sleep(0.2)
    return acked


def test_r3_stream_survives_loss_of_one_server(cluster3: BrokerCluster) -> None:
    async def go() -> tuple[list[int], list[int], int]:
        nc = await nats.connect(cluster3.urls, connect_timeout=2, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"], num_replicas=3, storage="file"))
        acked = await _publish_acked(js, 0, 100)
        # kill the stream leader: the worst case for the server we lose
        leader = (await js.stream_info("ORDERS")).cluster.leader
        victim = next(i for i, s in enumerate(cluster3.servers) if s.name == leader)
        cluster3.kill(victim)
        acked += await _publish_acked(js, 100, 100)
        info = await _retry(lambda: js.stream_info("ORDERS"))
        sub = await _retry(lambda: js.pull_subscribe("orders.>", durable="reader", stream="ORDERS"))
        got: list[int] = []
        while len(got) < info.state.messages:
            for m in await _retry(lambda: sub.fetch(50, timeout=2)):
                got.append(int(m.data))
                await m.ack()
        await nc.close()
        return acked, got, info.state.messages

    acked, got, stored = asyncio.run(go())
    assert len(acked) == 200
    assert set(acked) <= set(got)  # no acknowledged message lost
    assert stored == 200  # retried publishes were de-duplicated by Nats-Msg-Id


def test_killed_member_rejoins_and_catches_up(cluster3: BrokerCluster) -> None:
    async def go() -> None:
        nc = await nats.connect(cluster3.urls, connect_timeout=2, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name="CATCH", subjects=["catch.>"], num_replicas=3))
        assert len(await _publish_acked(js, 0, 10, "catch.x")) == 10
        cluster3.kill(2)
        assert len(await _publish_acked(js, 10, 10, "catch.x")) == 10
        await nc.close()

    asyncio.run(go())
    cluster3.restart(2)

    def replica_msgs() -> int:
        # the restarted server's own replica, as its /jsz reports it (not the leader's view)
        jsz = cluster3[2].monitor("jsz?streams=1")
        for acc in jsz.get("account_details", []):
            for st in acc.get("stream_detail", []):
                if st["name"] == "CATCH":
                    return st["state"]["messages"]
        return -1

    assert wait_until(lambda: replica_msgs() == 20, every=0.2), replica_msgs()
