"""Issue #13 (scale) under access control: topics of a namespace share one stream, so the stream
holds events a reader may not see. A low-privilege raw nats-py client must not get at them: no
consumer on the shared stream for a subject it may not read (directly or through the topic
service, with a wider filter or none), no message reads from the stream, no catalog writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw
from nats.js.api import ConsumerConfig

from evfabric.core.errors import AccessDenied
from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic, namespace_stream

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_a_reader_of_one_topic_cannot_read_the_shared_stream(secured: Any) -> None:
    secured.store.grant("users.alice.pub", "bob", ["subscribe"])
    secured.apply()
    stream = namespace_stream("users.alice.pub")

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        ajs = alice.nc.jetstream()
        pub = await create_topic(ajs, TopicConfig("users.alice.pub"))
        priv = await create_topic(ajs, TopicConfig("users.alice.priv"))
        assert pub.stream == priv.stream == stream  # one stream for the namespace
        await ajs.publish("evf.alice.0.users.alice.pub.x", b"public")
        await ajs.publish("evf.alice.0.users.alice.priv.x", b"secret")
        for who in ("bob", "eve"):
            raw = await Raw().open(secured.url, secured.tokens[who])
            js = raw.nc.jetstream(timeout=1)
            # the JetStream API itself: no consumer creation, no message reads, no catalog writes
            with pytest.raises(Exception):
                await js.add_consumer(stream, ConsumerConfig(durable_name=f"{who}_raw",
                                                             filter_subject="evf.*.*.users.alice.priv.>"), timeout=1)
            with pytest.raises(Exception):
                await js.get_msg(stream, 2)
            with pytest.raises(Exception):
                await js.get_last_msg(stream, "evf.alice.0.users.alice.priv.x", direct=True)
            with pytest.raises(Exception):
                await js.publish("$KV.EVF_TOPICS.t.users.alice.priv", b'{"config": {}}', timeout=1)
            # through the topic service: the other topic's subjects, the whole namespace, no filter
            for cfg in (ConsumerConfig(durable_name=f"{who}_priv", filter_subject="evf.*.*.users.alice.priv.>"),
                        ConsumerConfig(durable_name=f"{who}_ns", filter_subject="evf.*.*.users.alice.>"),
                        ConsumerConfig(durable_name=f"{who}_both", filter_subjects=["evf.*.*.users.alice.pub.>",
                                                                                    "evf.*.*.users.alice.priv.>"]),
                        ConsumerConfig(durable_name=f"{who}_all")):
                with pytest.raises(AccessDenied):
                    await add_consumer(js, stream, cfg)
            await raw.close()
        # positive control: bob's consumer on the topic he may read gets exactly its events
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        bjs = bob.nc.jetstream()
        await add_consumer(bjs, stream, ConsumerConfig(durable_name="bobs", filter_subject="evf.*.*.users.alice.pub.>"))
        psub = await bjs.pull_subscribe_bind("bobs", stream=stream)
        assert [m.data for m in await psub.fetch(10, timeout=2)] == [b"public"]
        await bob.close()
        await alice.close()

    asyncio.run(main())


def test_a_namespace_stream_is_not_shared_across_owners(secured: Any) -> None:
    """A shared stream's limits (bytes, age) are every topic's: the service keeps one owner per
    namespace stream, so another identity cannot fill it and push the owner's events out."""
    secured.store.register_topic("lab.a", "alice")
    secured.apply()

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        await create_topic(alice.nc.jetstream(), TopicConfig("lab.a"))
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        with pytest.raises(AccessDenied, match="namespace 'lab'"):
            await create_topic(bob.nc.jetstream(), TopicConfig("lab.b"))
        await create_topic(bob.nc.jetstream(), TopicConfig("users.bob.b"))  # his own namespace: fine
        await bob.close()
        await alice.close()

    asyncio.run(main())
