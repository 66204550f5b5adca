"""300 concurrent clients on one server: each receives every best-effort event (or the loss is
counted), and every reliable event any of them published is received once."""

from __future__ import annotations

import asyncio

import pytest
from _fabric_helpers import unique

import evfabric

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

N_CLIENTS = 300


def test_300_clients(broker) -> None:
    root = unique("many")

    async def go() -> None:
        clients = await asyncio.gather(*(evfabric.connect_async(broker.url, source=f"c{i}", connect_timeout=10)
                                         for i in range(N_CLIENTS)))
        try:
            await clients[0].create_topic(f"{root}r")
            counts = [0] * N_CLIENTS
            subs = []
            for i, c in enumerate(clients):
                def listener(ev: evfabric.Event, i: int = i) -> None:
                    counts[i] += 1
                subs.append(await c.subscribe(f"{root}.*", listener=listener))
            reliable: list[str] = []
            rsub = await clients[-1].subscribe(f"{root}r.*", delivery="reliable",
                                               listener=lambda ev: reliable.append(ev.id))
            await asyncio.gather(*(c.publish_many(f"{root}r.x", [{"i": j} for j in range(5)], delivery="reliable")
                                   for c in clients))
            await asyncio.gather(*(c.flush(30) for c in clients))  # all 1,500 acknowledged
            await clients[0].publish_many(f"{root}.x", [{"j": j} for j in range(20)])
            await clients[0].flush(10)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while loop.time() < deadline:
                be = all(counts[i] + subs[i].stats.dropped == 20 for i in range(N_CLIENTS))
                if be and len(set(reliable)) == 5 * N_CLIENTS:
                    break
                await asyncio.sleep(0.05)
            assert all(counts[i] + subs[i].stats.dropped == 20 for i in range(N_CLIENTS)), sorted(counts)[:5]
            assert len(set(reliable)) == 5 * N_CLIENTS and len(reliable) == 5 * N_CLIENTS
            assert rsub.stats.duplicates == 0
        finally:
            await asyncio.gather(*(c.close(5) for c in clients), return_exceptions=True)

    asyncio.run(go())
