"""Issue #10 point 5: a grant on ``exp.?`` stays one level, also for a raw subscription on
``evf.*.exp.>`` (NATS admits it: a literal ``>`` matches ``*``; the deny rules drop the deeper
levels per message) and for JetStream consumers (tested in test_topic_service)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw, eventually

from evfabric.fabric.roundtrip import flush

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_a_wildcard_subscription_gets_only_the_granted_level(secured: Any) -> None:
    store = secured.store
    store.register_topic("exp", "alice")
    store.grant("exp.?", "bob", ["subscribe"])
    secured.apply()

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        owner_got = await alice.collect("evf.*.*.exp.>")  # positive control: the owner's whole subtree
        wide = await bob.collect("evf.*.*.exp.>")  # the attack: admitted, but filtered per message
        exact = await bob.collect("evf.*.*.exp.*")  # what the grant is
        deep = await bob.collect("evf.*.*.exp.*.>")
        subjects = ["evf.alice.0.exp.a", "evf.alice.0.exp.a.b", "evf.alice.0.exp.a.b.c", "evf.alice.0.exp.z"]
        for subj in subjects:
            await alice.nc.publish(subj, subj.encode())
        await flush(alice.nc)
        assert await eventually(lambda: len(owner_got) == 4 and len(exact) == 2)
        # the z message, published last, reaches `wide` after everything before it (one connection, in order)
        assert await eventually(lambda: any(m.subject.endswith(".z") for m in wide))
        assert sorted(m.subject for m in wide) == ["evf.alice.0.exp.a", "evf.alice.0.exp.z"]
        assert sorted(m.subject for m in exact) == ["evf.alice.0.exp.a", "evf.alice.0.exp.z"]
        assert deep == [] and bob.violated("evf.*.*.exp.*.>")
        await alice.close()
        await bob.close()

    asyncio.run(main())


def test_a_deeper_grant_beside_a_partial_one_is_refused_not_widened(secured: Any) -> None:
    """``exp.?`` beside ``exp.a``: no NATS deny takes ``exp.b.c`` back from ``evf.*.*.exp.>``
    without cutting ``exp.a.b``, so the store refuses the pair (test_grant_exactness); the whole
    subtree ``exp.*`` beside ``exp.?`` is fine and bob reads ``exp.a.b``."""
    from evfabric.core.errors import ConfigError

    store = secured.store
    store.register_topic("exp", "alice")
    store.grant("exp.?", "bob", ["subscribe"])
    with pytest.raises(ConfigError, match=r"cannot keep 'exp\.\?' to one level"):
        store.grant("exp.a", "bob", ["subscribe"])
    store.grant("exp.*", "bob", ["subscribe"])
    store.grant("exp.a", "bob", ["subscribe"])
    secured.apply()

    async def main() -> None:
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        sub_a = await bob.collect("evf.*.*.exp.a.>")  # ordered flush: the broker has the SUB before alice publishes
        await alice.nc.publish("evf.alice.0.exp.a.b", b"x")
        await flush(alice.nc)
        assert await eventually(lambda: len(sub_a) == 1, 10), f"bob errors {bob.errors}, alice errors {alice.errors}"
        await alice.close()
        await bob.close()

    asyncio.run(main())
