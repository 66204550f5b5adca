"""Issue #10 point 3: users never touch the JetStream stream/consumer creation API; the topic
service builds streams from a validated TopicConfig and consumers within the caller's rights."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _attack import Raw
from nats.js.api import ConsumerConfig, StreamConfig, StreamSource

from evfabric.access.tokens import parse_token
from evfabric.core.errors import AccessDenied, ConfigError
from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic, update_topic
from evfabric.fabric.subjects import stream_name

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_stream_configs_cannot_be_chosen_by_users(secured: Any) -> None:
    secured.store.register_topic("mine", "bob")
    secured.store.register_topic("secret", "alice")
    secured.apply()

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        await create_topic(alice.nc.jetstream(), TopicConfig("secret"))  # positive control: via the service
        await alice.nc.jetstream().publish("evf.alice.0.secret.x", b"alice's data")
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        js = bob.nc.jetstream()
        attacks = [
            StreamConfig(name=stream_name("mine"), mirror=StreamSource(name=stream_name("secret"))),
            StreamConfig(name=stream_name("mine"), sources=[StreamSource(name=stream_name("secret"))]),
            StreamConfig(name=stream_name("mine"), subjects=["_INBOX.>"]),
            StreamConfig(name=stream_name("mine"), subjects=["evf.*.*.secret.>"]),
            StreamConfig(name=stream_name("mine"), subjects=["evf.*.*.mine.>"],
                         republish={"src": ">", "dest": "evf.alice.0.secret.forged"}),  # type: ignore[arg-type]
        ]
        for cfg in attacks:
            with pytest.raises(Exception):
                await js.add_stream(cfg, timeout=1)
        # the service accepts no field beyond TopicConfig's: a raw request with a mirror is refused
        tid = parse_token(secured.tokens["bob"])
        raw = {"config": {"name": "mine", "mirror": {"name": stream_name("secret")}}}
        reply = json.loads((await bob.nc.request(f"$EVF.API.TOPIC.CREATE.{tid}", json.dumps(raw).encode(),
                                                 timeout=5)).data)
        assert "error" in reply
        # nor on another token's service subject (the broker binds the token id)
        alice_tid = parse_token(secured.tokens["alice"])
        with pytest.raises(Exception):
            await bob.nc.request(f"$EVF.API.TOPIC.DELETE.{alice_tid}", b'{"name": "secret"}', timeout=1)
        # bob's own topic, through the service: exactly evfabric's subjects, nothing else
        await create_topic(js, TopicConfig("mine"))
        si = await js.stream_info(stream_name("mine"))
        assert si.config.subjects == ["evf.*.*.mine", "evf.*.*.mine.>"]
        assert si.config.mirror is None and not si.config.sources and si.config.republish is None
        with pytest.raises(AccessDenied):  # not the owner
            await update_topic(js, "secret", max_age=1.0)
        info = await alice.nc.jetstream().stream_info(stream_name("secret"))
        assert info.state.messages == 1  # alice's stream is untouched
        await alice.close()
        await bob.close()

    asyncio.run(main())


def test_consumers_stay_within_the_grant(secured: Any) -> None:
    store = secured.store
    store.register_topic("exp", "alice")
    store.grant("exp.?", "bob", ["subscribe"])  # one level only
    stream = stream_name("exp")
    secured.apply()

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        ajs = alice.nc.jetstream()
        await create_topic(ajs, TopicConfig("exp"))
        for subj in ("evf.alice.0.exp.a", "evf.alice.0.exp.a.deep", "evf.alice.0.exp.b"):
            await ajs.publish(subj, subj.encode())
        await add_consumer(ajs, stream, ConsumerConfig(durable_name="alices"))  # the owner reads everything
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        bjs = bob.nc.jetstream()
        # directly: refused, whatever the filter or delivery subject
        for cfg in (ConsumerConfig(durable_name="d1", filter_subject="evf.*.*.exp.*"),
                    ConsumerConfig(durable_name="d2", deliver_subject="evf.alice.0.users.alice.inbox")):
            with pytest.raises(Exception):
                await bjs.add_consumer(stream, cfg, timeout=1)
        # through the service: a filter wider than the grant, a push consumer, no filter at all
        for cfg in (ConsumerConfig(durable_name="wide", filter_subject="evf.*.*.exp.>"),
                    ConsumerConfig(durable_name="all"),
                    ConsumerConfig(durable_name="push", filter_subject="evf.*.*.exp.*",
                                   deliver_subject="evf.alice.0.users.alice.inbox")):
            with pytest.raises(AccessDenied):
                await add_consumer(bjs, stream, cfg)
        # within the grant: works, and reads exactly the granted level
        await add_consumer(bjs, stream, ConsumerConfig(durable_name="bobs", filter_subject="evf.*.*.exp.*"))
        psub = await bjs.pull_subscribe_bind("bobs", stream=stream)
        msgs = await psub.fetch(10, timeout=2)
        assert sorted(m.data for m in msgs) == [b"evf.alice.0.exp.a", b"evf.alice.0.exp.b"]
        # and bob cannot pull from alice's consumer (it reads the whole stream)
        with pytest.raises(Exception):
            other = await bjs.pull_subscribe_bind("alices", stream=stream)
            await other.fetch(1, timeout=1)
        apsub = await ajs.pull_subscribe_bind("alices", stream=stream)
        assert len(await apsub.fetch(3, timeout=2)) == 3
        await alice.close()
        await bob.close()

    asyncio.run(main())


def test_the_evfabric_client_works_through_the_service(secured: Any) -> None:
    """Positive control end to end: auto-topic creation and reliable subscriptions of the
    evfabric client go through the service under access control."""
    from evfabric.fabric.aio import connect_async

    secured.store.grant("lab", "bob", ["subscribe"])  # before alice registers: a grant on a free name
    secured.store.register_topic("site", "alice")  # registered (e.g. through the REST API), no stream yet
    secured.apply()
    got: list[Any] = []

    async def main() -> None:
        a = await connect_async(secured.url, token=secured.tokens["alice"])  # auto_topics on
        await a.create_topic("lab")  # a free name: the service registers it for alice and creates it
        assert secured.store.get_topic("lab").owner == "alice"
        await a.publish("lab.temp", {"c": 21}, delivery="reliable", wait=True)
        await a.publish("site.x", {"n": 1}, delivery="reliable", wait=True)  # auto-created through the service
        assert (await a.describe_topic("site")).messages == 1
        with pytest.raises(AccessDenied):
            await a.create_topic("users.bob")  # another identity's namespace
        b = await connect_async(secured.url, token=secured.tokens["bob"], auto_topics=False)
        await b.subscribe("lab.*", listener=lambda ev: got.append(ev.body), delivery="reliable", start="earliest")
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == [{"c": 21}]
        await a.close()
        await b.close()

    asyncio.run(main())


def test_raw_topics_are_refused_under_access_control(secured: Any) -> None:
    """A raw topic would store foreign subjects, which access control closes to everyone: the
    topic service refuses it, for an administrator too, in one line; no stream is left behind."""
    secured.store.register_topic("lab", "alice")
    secured.apply()

    async def main() -> None:
        for who in ("alice", "root"):
            raw = await Raw().open(secured.url, secured.tokens[who])
            js = raw.nc.jetstream()
            with pytest.raises(ConfigError, match="raw topics read foreign subjects") as refused:
                await create_topic(js, TopicConfig("lab", raw=True))
            assert "\n" not in str(refused.value)
            await create_topic(js, TopicConfig("lab"), exist_ok=True)  # positive control: the same, not raw
            await raw.close()
        admin = await Raw().open(secured.url, secured.tokens["root"])
        names = [si.config.name for si in await admin.nc.jetstream().streams_info()]
        assert not [n for n in names if n.startswith("EVF_RAW_")], names
        await admin.close()

    asyncio.run(main())
