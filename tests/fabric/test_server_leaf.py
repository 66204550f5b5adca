"""Hub and leaf: the edge keeps working while cut off, and catches the hub up once reconnected."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import StreamConfig

from evfabric.fabric.edge import edge_source
from evfabric.testing import wait_until_async
from evfabric.testing.leaf import HubAndLeaf

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def _count(js, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def _wait_count(js, stream: str, n: int) -> int:
    """The stream's message count once it is ``n`` (or what it is after the wait's timeout)."""
    async def reached() -> bool:
        return await _count(js, stream) == n

    await wait_until_async(reached, every=0.1)
    return await _count(js, stream)


async def _read_all(js, stream: str, subject: str) -> list[bytes]:
    sub = await js.pull_subscribe(subject, stream=stream)
    n = await _count(js, stream)
    out: list[bytes] = []
    while len(out) < n:
        for m in await sub.fetch(n - len(out), timeout=5):
            out.append(m.data)
            await m.ack()
    return out


def test_leaf_cut_off_then_reconnected_delivers_to_hub(leaf_pair: HubAndLeaf) -> None:
    async def go() -> None:
        leaf_pair.wait_connected()
        assert leaf_pair.leaf is not None
        lc = await nats.connect(leaf_pair.leaf.url)
        hc = await nats.connect(leaf_pair.hub.url)
        ljs, hjs = lc.jetstream(), hc.jetstream()
        await ljs.add_stream(StreamConfig(name="EDGE", subjects=["site.>"]))
        await hjs.add_stream(StreamConfig(name="FROM_EDGE", sources=[edge_source("EDGE", leaf_pair.leaf_domain)]))

        for i in range(5):
            await ljs.publish("site.temp", f"before-{i}".encode())
        assert await _wait_count(hjs, "FROM_EDGE", 5) == 5

        leaf_pair.cut()
        # the hub notices the closed link almost at once
        assert await wait_until_async(lambda: not leaf_pair.leaf_connected())
        # the edge keeps working on its own: acked publishes, local reads
        for i in range(7):
            ack = await ljs.publish("site.temp", f"during-{i}".encode())
            assert ack.domain == leaf_pair.leaf_domain
        local = await _read_all(ljs, "EDGE", "site.>")
        assert local[-1] == b"during-6" and len(local) == 12
        assert await _count(hjs, "FROM_EDGE") == 5  # stored at the edge, not crossed: the link is down

        leaf_pair.heal()
        assert await _wait_count(hjs, "FROM_EDGE", 12) == 12
        hub_side = await _read_all(hjs, "FROM_EDGE", "site.>")
        assert hub_side == [f"before-{i}".encode() for i in range(5)] + [f"during-{i}".encode() for i in range(7)]
        await lc.close()
        await hc.close()

    asyncio.run(go())


def test_hub_reaches_leaf_jetstream_through_its_domain(leaf_pair: HubAndLeaf) -> None:
    async def go() -> tuple[int, str]:
        leaf_pair.wait_connected()
        assert leaf_pair.leaf is not None
        lc = await nats.connect(leaf_pair.leaf.url)
        ljs = lc.jetstream()
        await ljs.add_stream(StreamConfig(name="LOCAL", subjects=["local.>"]))
        await ljs.publish("local.x", b"1")
        hc = await nats.connect(leaf_pair.hub.url)
        # a client at the hub can manage the edge's streams by naming the edge's domain
        remote = hc.jetstream(domain=leaf_pair.leaf_domain)
        info = await remote.stream_info("LOCAL")
        await lc.close()
        await hc.close()
        return info.state.messages, info.config.name

    assert asyncio.run(go()) == (1, "LOCAL")
