"""Issue #10 point 4: no forged events. The broker binds the publisher token of the subject
(``evf.<publisher>.<partition>.<topic>``) to the connection's identity, and receivers take topic
and publisher from the subject: what bob publishes on ``results.bob`` with a payload claiming
``results.alice`` / ``alice`` arrives as topic ``results.bob``, publisher ``bob``; its dead
letter carries the true topic too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw, eventually

from evfabric.core.codec import encode_batch
from evfabric.core.event import Event
from evfabric.fabric.aio import connect_async
from evfabric.fabric.roundtrip import flush

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _forged(n: int = 1) -> bytes:
    return encode_batch([Event(id=f"forged{i}", topic="results.alice", source="alice", time=1.0,
                               body={"claim": "I am alice"}) for i in range(n)])


def test_a_publisher_cannot_claim_another_identity_or_topic(secured: Any) -> None:
    store = secured.store
    store.register_topic("results", "root")
    store.grant("results.bob", "bob", ["publish"])
    store.grant("results.alice", "alice", ["publish"])
    store.grant("results.?", "eve", ["subscribe"])
    secured.apply()
    got: list[Event] = []

    async def main() -> None:
        eve = await connect_async(secured.url, token=secured.tokens["eve"], auto_topics=False)
        await eve.subscribe("results.?", listener=got.append)
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        for subject in ("evf.alice.0.results.alice", "evf.alice.0.results.bob", "evf.bob.0.results.alice",
                        "evf._.0.results.bob"):
            await bob.nc.publish(subject, _forged(), headers={"Content-Type": "application/vnd.evfabric.events+msgpack"})
        await flush(bob.nc)
        assert await eventually(lambda: bob.violated("evf.alice.0.results.alice")
                                and bob.violated("evf.bob.0.results.alice"))
        # on its own subject, bob's lie about topic and source does not stick
        await bob.nc.publish("evf.bob.0.results.bob", _forged(),
                             headers={"Content-Type": "application/vnd.evfabric.events+msgpack"})
        alice = await connect_async(secured.url, token=secured.tokens["alice"], auto_topics=False)
        await alice.publish("results.alice", {"real": True})  # positive control
        assert await eventually(lambda: len(got) == 2)
        by_topic = {ev.topic: ev for ev in got}
        assert set(by_topic) == {"results.bob", "results.alice"}
        assert by_topic["results.bob"].publisher == "bob" and by_topic["results.bob"].body == {"claim": "I am alice"}
        assert by_topic["results.alice"].publisher == "alice" and by_topic["results.alice"].body == {"real": True}
        await bob.close()
        await alice.close()
        await eve.close()

    asyncio.run(main())


def test_dead_letters_inherit_the_true_topic(secured: Any) -> None:
    store = secured.store
    store.register_topic("jobs", "alice")
    store.grant("jobs.bob", "bob", ["publish"])
    secured.apply()
    letters: list[Event] = []

    async def main() -> None:
        alice = await connect_async(secured.url, token=secured.tokens["alice"], auto_topics=False)
        await alice.create_topic("jobs")

        def fail(ev: Event) -> None:
            raise RuntimeError("no")

        await alice.subscribe("cca.deadletter.jobs.*", listener=letters.append)
        await alice.subscribe("jobs.*", listener=fail, delivery="reliable", max_deliver=1, start="earliest")
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        await bob.nc.jetstream().publish("evf.bob.0.jobs.bob", _forged(),
                                         headers={"Content-Type": "application/vnd.evfabric.events+msgpack"})
        assert await eventually(lambda: len(letters) == 1, 15)
        assert letters[0].topic == "cca.deadletter.jobs.bob"
        assert letters[0].body["event"]["topic"] == "jobs.bob"
        await bob.close()
        await alice.close()

    asyncio.run(main())
