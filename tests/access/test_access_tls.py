"""TLS on client connections, with a self-signed certificate, together with token auth."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from evfabric.access import nats_options
from evfabric.access.tls import enable_tls, self_signed
from evfabric.fabric.roundtrip import flush
from evfabric.testing import wait_until_async

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


def test_tls_with_a_self_signed_certificate(guarded: Any, tmp_path: Any) -> None:
    files = self_signed(tmp_path / "tls")
    assert self_signed(tmp_path / "tls").cert.read_bytes() == files.cert.read_bytes()  # reused
    enable_tls(guarded.server, files)
    tok = guarded.store.issue_token("alice").secret
    port = guarded.server.settings.port

    async def main() -> None:
        nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=files.client_context(), connect_timeout=3,
                                allow_reconnect=False, **nats_options(tok))
        got: list[bytes] = []

        async def cb(msg: Any) -> None:
            got.append(msg.data)

        await nc.subscribe("evf.*.*.users.alice.>", cb=cb)
        await nc.publish("evf.alice.0.users.alice.x", b"secret")
        await flush(nc)
        assert await wait_until_async(lambda: got)
        assert got == [b"secret"]
        await nc.close()
        # a client that does not trust the certificate is refused
        with pytest.raises(Exception):
            await nats.connect(f"tls://127.0.0.1:{port}", connect_timeout=2, allow_reconnect=False,
                               max_reconnect_attempts=0, **nats_options(tok))
        # nor one asking for nats:// (the server requires TLS, and the certificate is not trusted)
        with pytest.raises(Exception):
            await nats.connect(f"nats://127.0.0.1:{port}", connect_timeout=2, allow_reconnect=False,
                               max_reconnect_attempts=0, **nats_options(tok))

    guarded.control.reload()  # returns once the broker requires TLS and knows the token
    asyncio.run(main())
