"""The publisher token of the subject (docs/wire.md sections 1 and 6): learned from the broker,
bound by it, and the only source of ``event.publisher`` and ``event.topic`` on receipt."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import msgspec
import nats
import pytest

import evfabric
from evfabric.access import AccessStore
from evfabric.access.control import AccessControl
from evfabric.core.errors import AccessDenied
from evfabric.core.event import Event
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject

pytestmark = pytest.mark.timeout(60)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_open_server_publishes_as_anonymous_and_receivers_trust_the_subject(broker_session: Any) -> None:
    root = unique("ident")

    async def main() -> None:
        client = await evfabric.connect_async(broker_session.url, source="t")
        got: list[Event] = []
        done = asyncio.Event()

        def on(ev: Event) -> None:
            got.append(ev)
            if len(got) == 2:
                done.set()

        await client.subscribe(f"{root}.*", listener=on)
        assert client.identity == "_"
        await client.publish(f"{root}.a", {"n": 1})
        # a raw publisher lies in the payload: topic and publisher come from the subject anyway
        liar = Event(id="x1", topic=f"{root}.elsewhere", source="liar", time=1.0, publisher="root")
        nc = await nats.connect(broker_session.url)
        await nc.publish(topic_subject(f"{root}.b", 0, "mallory"), msgspec.msgpack.encode([liar]))
        await flush(nc)
        await asyncio.wait_for(done.wait(), 10)
        by_topic = {ev.topic: ev for ev in got}
        assert set(by_topic) == {f"{root}.a", f"{root}.b"}
        assert by_topic[f"{root}.a"].publisher is None  # "_": nobody authenticated
        assert by_topic[f"{root}.b"].publisher == "mallory"
        await nc.close()
        await client.close()

    asyncio.run(main())


def test_identity_comes_from_the_broker_and_others_cannot_be_claimed(broker: Any) -> None:
    store = AccessStore.in_dir(broker.data_dir)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    store.register_topic("jobs", "alice")
    control = AccessControl(store, poll_interval=0.2)
    control.attach(broker)
    alice_tok, root_tok = store.issue_token("alice").secret, store.issue_token("root").secret
    try:
        async def main() -> None:
            await asyncio.to_thread(control.reload)  # returns once the broker knows the new tokens
            alice = await evfabric.connect_async(broker.url, token=alice_tok, source="a")
            root = await evfabric.connect_async(broker.url, token=root_tok, source="r")
            assert alice.identity == "alice" and root.identity == "root"
            got: list[Event] = []
            both = threading.Event()

            def on(ev: Event) -> None:
                got.append(ev)
                if len(got) == 2:
                    both.set()

            await alice.create_topic("jobs", exist_ok=True)
            await alice.subscribe("jobs.*", listener=on)
            await alice.publish("jobs.x", {"by": "alice"}, delivery="reliable")
            await root.publish("jobs.y", {"by": "root"}, delivery="reliable")
            await asyncio.get_running_loop().run_in_executor(None, both.wait, 10)
            assert sorted((ev.topic, ev.publisher) for ev in got) == [("jobs.x", "alice"), ("jobs.y", "root")]
            # told a false identity, even an administrator is refused by the broker
            fake = await evfabric.connect_async(broker.url, token=root_tok, source="f", identity="alice")
            with pytest.raises(AccessDenied):
                await fake.publish("jobs.z", {"by": "fake"}, delivery="reliable", timeout=5)
            for c in (alice, root, fake):
                await c.close(timeout=1)

        asyncio.run(main())
    finally:
        control.close()
