"""What one user holds stays theirs: another's consumer cannot be taken over by name, a user's
services share its quotas, memory topics have a cap of their own, and no registration puts a
topic into a namespace stream another owner uses (raw nats-py clients with low-privilege tokens)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw
from nats.js.api import ConsumerConfig

from evfabric.access.manager import AccessManager
from evfabric.access.quotas import Quotas, check_topic
from evfabric.core.errors import AccessDenied, QuotaExceeded
from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic, namespace_stream

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_another_users_consumer_cannot_be_taken_over_by_its_name(secured: Any) -> None:
    secured.store.grant("users.alice.shared", "bob", ["subscribe"])
    secured.apply()
    stream = namespace_stream("users.alice.shared")

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        ajs = alice.nc.jetstream()
        await create_topic(ajs, TopicConfig("users.alice.shared"))
        filt = "evf.*.*.users.alice.shared.>"
        await add_consumer(ajs, stream, ConsumerConfig(durable_name="alice_work", filter_subject=filt))
        for i in range(3):
            await ajs.publish(f"evf.alice.0.users.alice.shared.x{i}", b"work")
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        bjs = bob.nc.jetstream(timeout=2)
        with pytest.raises(AccessDenied, match="it exists and is alice's"):
            await add_consumer(bjs, stream, ConsumerConfig(durable_name="alice_work", filter_subject=filt,
                                                           max_ack_pending=1))
        info = await ajs.consumer_info(stream, "alice_work")
        assert info.config.max_ack_pending != 1 and info.num_pending == 3  # unchanged, nothing taken
        with pytest.raises(Exception):  # and no right to pull from it came with the attempt
            psub = await bjs.pull_subscribe_bind("alice_work", stream=stream)
            await psub.fetch(1, timeout=1)
        # positive control: alice changes her own consumer; bob makes his own under another name
        await add_consumer(ajs, stream, ConsumerConfig(durable_name="alice_work", filter_subject=filt,
                                                       max_ack_pending=5))
        await add_consumer(bjs, stream, ConsumerConfig(durable_name="bob_own", filter_subject=filt))
        for c in (alice, bob):
            await c.close()

    asyncio.run(main())


def test_a_users_services_share_its_quotas(tight: Any) -> None:
    """``tight``: 2 topics with streams, 1.5 MiB of storage per holder."""
    for k in range(2):
        tight.store.create_identity(f"bobsvc{k}", "service", owner="bob")
    tokens = {f"bobsvc{k}": tight.store.issue_token(f"bobsvc{k}").secret for k in range(2)}
    tight.apply()

    async def main() -> None:
        bob = await Raw().open(tight.url, tight.tokens["bob"])
        await create_topic(bob.nc.jetstream(), TopicConfig("users.bob.a"))  # 1 MiB, bob's
        svc0 = await Raw().open(tight.url, tokens["bobsvc0"])
        with pytest.raises(QuotaExceeded, match="'bob' reserves"):  # 1 + 1 MiB > 1.5 MiB: bob's storage quota
            await create_topic(svc0.nc.jetstream(), TopicConfig("users.bobsvc0.a"))
        await create_topic(svc0.nc.jetstream(), TopicConfig("users.bobsvc0.a", max_bytes=1 << 18))
        svc1 = await Raw().open(tight.url, tokens["bobsvc1"])
        with pytest.raises(QuotaExceeded, match="'bob' has 2 topics"):  # the third stream of bob's
            await create_topic(svc1.nc.jetstream(), TopicConfig("users.bobsvc1.a", max_bytes=1 << 10))
        alice = await Raw().open(tight.url, tight.tokens["alice"])  # positive control: alice's quota is her own
        await create_topic(alice.nc.jetstream(), TopicConfig("users.alice.a"))
        for c in (bob, svc0, svc1, alice):
            await c.close()

    asyncio.run(main())


def test_memory_topics_have_a_cap_of_their_own(secured: Any) -> None:
    async def main() -> None:
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        bjs = bob.nc.jetstream()
        info = await create_topic(bjs, TopicConfig("users.bob.mem", storage="memory"))
        assert info.config.max_bytes == 16 << 20  # the memory cap, not the 256 MiB file cap
        with pytest.raises(QuotaExceeded, match="per-topic cap 16777216 for memory topics"):
            await create_topic(bjs, TopicConfig("users.bob.big", storage="memory", max_bytes=64 << 20))
        alice = await Raw().open(secured.url, secured.tokens["alice"])  # bob's memory topic starves nobody
        await create_topic(alice.nc.jetstream(), TopicConfig("users.alice.mem", storage="memory", max_bytes=1 << 20))
        for c in (bob, alice):
            await c.close()

    asyncio.run(main())


def test_registration_refuses_a_namespace_another_owner_uses(secured: Any) -> None:
    manager = AccessManager(secured.store)
    snap = secured.store.snapshot()
    alice, bob = snap.identities["alice"], snap.identities["bob"]
    secured.store.register_topic("proj.a", "alice")
    with pytest.raises(AccessDenied, match="namespace 'proj' shares one stream, which holds topics of 'alice'"):
        manager.register_topic(bob, "proj.b")
    assert manager.register_topic(alice, "proj.c").owner == "alice"  # the owner adds to her namespace
    root = secured.store.snapshot().identities["root"]
    assert manager.register_topic(root, "proj.d", owner="bob").owner == "bob"  # an administrator may


def test_memory_and_file_reservations_count_apart() -> None:
    quotas = Quotas()
    mem = [TopicConfig("a", storage="memory"), TopicConfig("b", storage="memory")]  # 2 x 16 MiB: the memory quota
    with pytest.raises(QuotaExceeded, match="memory quota 33554432"):
        check_topic(quotas, "bob", TopicConfig("c", storage="memory", max_bytes=1 << 20), mem)
    assert check_topic(quotas, "bob", TopicConfig("d"), mem).max_bytes == 256 << 20  # file storage: its own quota
    files = [TopicConfig(f"f{i}") for i in range(8)]  # 8 x 256 MiB: the storage quota
    assert check_topic(quotas, "bob", TopicConfig("e", storage="memory"), files).max_bytes == 16 << 20
