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
