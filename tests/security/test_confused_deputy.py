"""A user cannot make the topic service (an administrator's connection) publish where the user
may not (a confused deputy): the service answers only on reply inboxes (``_INBOX.``). Before, a
request whose reply subject was ``$KV.<bucket>.<key>`` (the trigger definitions, say) made the
service overwrite that key with its JSON answer."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from _attack import Raw

from evfabric.access import nats_options
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.topic_api import service_subject

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_the_service_never_answers_on_a_forged_reply_subject(secured: Any) -> None:
    bob_tok = secured.store.authenticate(secured.tokens["bob"])[1].id

    async def main() -> None:
        root = await nats.connect(secured.url, **nats_options(secured.tokens["root"]))
        kv = await root.jetstream().create_key_value(bucket="victim")
        await kv.put("definition", b"the administrator's value")
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        with pytest.raises(nats.errors.Error):
            await bob.nc.publish("$KV.victim.definition", b"bob's")  # bob may not write there himself
            await flush(bob.nc)
            await asyncio.sleep(0.3)
            raise nats.errors.Error(str(bob.errors))
        # the attack: service requests whose reply subject is the key
        for kind, op in (("conn", "check"), ("topic", "create"), ("nope", "nope")):
            await bob.nc.publish(service_subject(kind, op, bob_tok), b"{}", reply="$KV.victim.definition")
        await flush(bob.nc)
        await asyncio.sleep(1.0)
        assert (await kv.get("definition")).value == b"the administrator's value"
        # positive control: an ordinary request is answered on bob's inbox
        r = await bob.nc.request(service_subject("conn", "check", bob_tok), b"{}", timeout=5)
        assert r.data == b'{"ok": {}}'
        await bob.close()
        await root.close()

    asyncio.run(main())


def test_a_server_answer_sent_into_the_catalog_is_not_taken_for_a_record(secured: Any) -> None:
    """nats-server's own responders (JetStream API, ``$SYS``) answer on any reply subject a user
    gives, and nothing checks it (docs/security.md, "Not protected"): bob can make the server
    write its JSON answer onto a catalog key. The answer is not read as a record (it lacks the
    ``Evf-Record`` header): alice's client sees her topic as unknown, with a clear error, never a
    crash, and re-creating the topic writes a record of ours again."""
    import evfabric
    from evfabric.core.errors import NotFound
    from evfabric.fabric.catalog import catalog_subject

    async def forge() -> None:
        bob = await Raw().open(secured.url, secured.tokens["bob"])
        await bob.nc.publish("$JS.API.INFO", b"", reply=catalog_subject("t", "users.alice.data"))
        await flush(bob.nc)
        await bob.close()

    with evfabric.connect(secured.url, token=secured.tokens["alice"]) as alice:
        alice.create_topic("users.alice.data")
        alice.publish("users.alice.data.x", {"i": 1}, delivery="reliable")
    asyncio.run(forge())
    with evfabric.connect(secured.url, token=secured.tokens["alice"]) as alice:  # a fresh client: no cache
        with pytest.raises(NotFound):
            alice.describe_topic("users.alice.data")
        alice.create_topic("users.alice.data")  # the record is ours again
        assert alice.describe_topic("users.alice.data").config.name == "users.alice.data"
        alice.publish("users.alice.data.x", {"i": 2}, delivery="reliable")
