"""1,000 topics cost a few streams, and connecting reads none of them (issue #13, scale)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

import evfabric
from evfabric.fabric.roundtrip import flush

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

TOPICS = 1000


def test_a_thousand_topics_few_streams_and_a_flat_connect(broker: Any) -> None:
    async def main() -> None:
        c = await evfabric.connect_async(broker.url, max_batch=1)
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                await c.create_topic(f"many{i % 2}.t{i}")

        await asyncio.gather(*(make(i) for i in range(TOPICS)))
        await c.publish("many1.t7.x", {"n": 7}, delivery="reliable")
        await c.publish("many0.t8.x", {"n": 8}, delivery="reliable")
        await c.close()

        raw = await nats.connect(broker.url)
        streams = await raw.jetstream().streams_info()
        names = sorted(s.config.name for s in streams)
        assert len(names) == 3, names  # two namespaces and the catalog, for 1,000 topics
        api: list[str] = []

        async def sniff(msg: Any) -> None:
            api.append(msg.subject)

        await raw.subscribe("$JS.API.>", cb=sniff)
        await flush(raw)

        fresh = await evfabric.connect_async(broker.url)
        await flush(fresh.nc)
        await flush(raw)
        assert fresh.catalog.cache.lookups == 0
        assert not [s for s in api if ".STREAM." in s or "DIRECT.GET" in s], api  # connect lists nothing
        api.clear()
        got: list[Any] = []
        sub = await fresh.subscribe("many1.t7.*", replay=True, listener=got.append)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert [e.body for e in got] == [{"n": 7}]  # one topic's events out of the shared stream
        assert len([s for s in api if "DIRECT.GET" in s]) <= 4, api  # a few lookups, not one per topic
        assert not [s for s in api if s.startswith("$JS.API.STREAM.LIST") or s.startswith("$JS.API.STREAM.NAMES")]
        info = await fresh.describe_topic("many1.t7")
        assert info.shared and info.messages == 1 and info.config.namespace == "many1"
        sub.unsubscribe()
        await fresh.close()
        await raw.close()

    asyncio.run(main())
