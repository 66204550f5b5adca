"""Issue #10 point 8: unregistering a topic (or deleting its owner) deletes its stream, so
whoever registers the name next reads nothing old."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw
from nats.js.api import ConsumerConfig

from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic
from evfabric.fabric.subjects import stream_name

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


async def _streams(root: Raw) -> set[str]:
    return {s.config.name for s in await root.nc.jetstream().streams_info()}


def test_the_next_owner_reads_nothing_old(secured: Any) -> None:
    store = secured.store

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        ajs = alice.nc.jetstream()
        await create_topic(ajs, TopicConfig("notes"))
        await create_topic(ajs, TopicConfig("diary"))
        for subj in ("evf.alice.0.notes.x", "evf.alice.0.diary.x"):
            await ajs.publish(subj, b"alice's secret")
        root = await Raw().open(secured.url, secured.tokens["root"])
        assert {stream_name("notes"), stream_name("diary")} <= await _streams(root)
        store.unregister_topic("notes")
        gone: set[str] = set()

        async def check() -> None:
            gone.clear()
            gone.update({stream_name("notes"), stream_name("diary")} - await _streams(root))

        for _ in range(400):
            await check()
            if stream_name("notes") in gone:
                break
            await asyncio.sleep(0.05)
        assert gone == {stream_name("notes")}  # diary is still registered: kept
        # bob registers "notes" and reads nothing of alice's
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        bjs = bob.nc.jetstream()
        info = await create_topic(bjs, TopicConfig("notes"))
        assert info.messages == 0
        await add_consumer(bjs, stream_name("notes"), ConsumerConfig(durable_name="old"))
        psub = await bjs.pull_subscribe_bind("old", stream=stream_name("notes"))
        with pytest.raises(Exception):
            await psub.fetch(1, timeout=0.5)  # nothing
        # deleting alice takes her remaining topic's stream with it
        store.delete_identity("alice")
        for _ in range(400):
            await check()
            if stream_name("diary") in gone:
                break
            await asyncio.sleep(0.05)
        assert stream_name("diary") in gone
        for c in (alice, bob, root):
            await c.nc.close()

    asyncio.run(main())
