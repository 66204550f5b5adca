"""Issue #10 point 4 for administrators: an administrator cannot publish in another identity's
name directly (the broker refuses ``evf.<other>.>``); the one way it still can, through the
JetStream API it holds (a stream's ``republish``, a consumer's ``deliver_subject``), leaves an
audit entry naming it (``evfabric.access.audit``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _attack import Raw, eventually, wait_until
from nats.js.api import RePublish, StreamConfig

from evfabric.fabric.roundtrip import flush

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_an_administrator_cannot_publish_as_another(secured: Any) -> None:
    secured.store.register_topic("results", "alice")
    secured.apply()

    async def main() -> None:
        root = await Raw().open(secured.url, secured.tokens["root"])
        alice = await Raw().open(secured.url, secured.tokens["alice"])
        got = await alice.collect("evf.*.*.results.>")
        for who in ("alice", "bob", "_", "evfabric-serve"):
            await root.nc.publish(f"evf.{who}.0.results.x", who.encode())
        await root.nc.publish("evf.root.0.results.x", b"root")  # positive control: in its own name
        await flush(root.nc)
        assert await eventually(lambda: len(got) >= 1)
        await asyncio.sleep(0.3)
        assert [m.subject for m in got] == ["evf.root.0.results.x"]
        assert root.violated("evf.alice.0.results.x") and root.violated("evf.evfabric-serve.0.results.x")
        await root.close()
        await alice.close()

    asyncio.run(main())


def test_an_administrators_jetstream_republish_is_audited(secured: Any) -> None:
    assert wait_until(lambda: secured.control.service is not None and secured.control.service.running, 10)
    audit = secured.control.service.audit

    async def main() -> None:
        root = await Raw().open(secured.url, secured.tokens["root"])
        js = root.nc.jetstream()
        await js.add_stream(StreamConfig(name="SNEAKY", subjects=["evf.root.*.adm.>"],
                                         republish=RePublish(src="evf.root.*.adm.>", dest="evf.alice.0.adm.>")))
        await root.close()

    asyncio.run(main())
    assert wait_until(lambda: any(e.subject == "$JS.API.STREAM.CREATE.SNEAKY" for e in audit.entries), 10)
    entry = next(e for e in audit.entries if e.subject == "$JS.API.STREAM.CREATE.SNEAKY")
    assert entry.identity == "root" and "evf.alice.0.adm" in entry.request
    # the service's own stream changes (the dead-letter stream, users' topics) are not entries
    assert all(e.identity != "evfabric-serve" for e in audit.entries)
