"""The broker itself enforces the access store: raw nats-py clients, a real nats-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
import nats.errors
import pytest
from nats.js.api import ConsumerConfig, StreamConfig

from evfabric.access import nats_options
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import stream_name
from evfabric.testing import connection_refused
from evfabric.testing import wait_until_async as wait_for

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]


class Conn:
    """A raw nats-py connection that records the server's errors (permission violations...)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.disconnected = asyncio.Event()
        self.nc: Any = None

    async def open(self, url: str, token: str | None, **extra: Any) -> Conn:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        async def on_disconnect() -> None:
            self.disconnected.set()

        opts = nats_options(token) if token else {}
        self.nc = await nats.connect(url, error_cb=on_error, disconnected_cb=on_disconnect, connect_timeout=2,
                                     max_reconnect_attempts=2, reconnect_time_wait=0.2, **opts, **extra)
        return self

    async def received(self, subject: str) -> list[bytes]:
        got: list[bytes] = []

        async def cb(msg: Any) -> None:
            got.append(msg.data)

        await self.nc.subscribe(subject, cb=cb)
        await flush(self.nc)
        return got

    def state(self) -> str:
        return f"errors {self.errors}, connected {self.nc.is_connected}, disconnected once {self.disconnected.is_set()}"

    def violated(self, what: str) -> bool:
        # nats-py lower-cases the server's message
        return any("permissions violation" in e.lower() and what.lower() in e.lower() for e in self.errors)


def seen(guarded: Any, alice: Conn, bob: Conn) -> str:
    """What the clients, the control and the server's log saw: the message of a failed wait."""
    log = guarded.server.log_path.read_text(errors="replace").splitlines()
    notable = [ln for ln in log if any(w in ln for w in ("Removed sub", "Permissions", "Authorization", "Reloaded", "reload"))]
    return (f"alice: {alice.state()}; bob: {bob.state()}; reloads {guarded.control.reloads}, last error "
            f"{guarded.control.last_error!r}; server log: {notable[-12:]}")


def test_no_token_and_bad_token_are_refused(guarded: Any) -> None:
    async def main() -> None:
        for opts in ({}, {"user": "alice", "password": "guess"}):
            assert await connection_refused(guarded.server.url, **opts)

    asyncio.run(main())


def test_a_user_without_grants_cannot_publish_or_subscribe(guarded: Any) -> None:
    store = guarded.store
    store.register_topic("jobs", "alice")
    alice_tok, bob_tok = store.issue_token("alice").secret, store.issue_token("bob").secret

    guarded.control.reload()  # the broker knows the tokens before anyone connects

    async def main() -> None:
        alice = await Conn().open(guarded.server.url, alice_tok)
        bob = await Conn().open(guarded.server.url, bob_tok)
        got_alice = await alice.received("evf.*.*.jobs.>")
        got_bob = await bob.received("evf.*.*.jobs.>")
        assert await wait_for(lambda: bob.violated('subscription to "evf.*.*.jobs.>"'))
        await bob.nc.publish("evf.bob.0.jobs.status", b"forged")
        await bob.nc.publish("evf.alice.0.jobs.status", b"forged")  # nor in alice's name
        await flush(bob.nc)
        await alice.nc.publish("evf.bob.0.jobs.status", b"impersonated")  # the owner cannot claim to be bob
        await alice.nc.publish("evf.alice.0.jobs.status", b"real")
        await flush(alice.nc)
        assert await wait_for(lambda: bob.violated('publish to "evf.bob.0.jobs.status"'))
        assert await wait_for(lambda: bob.violated('publish to "evf.alice.0.jobs.status"'))
        assert await wait_for(lambda: alice.violated('publish to "evf.bob.0.jobs.status"'))
        # "real" went last (bob flushed before): anything forged or impersonated would be before it
        assert await wait_for(lambda: b"real" in got_alice)
        assert got_alice == [b"real"] and got_bob == []
        # the JetStream API refuses too: no stream creation, no consumer on someone else's topic
        js = bob.nc.jetstream()
        with pytest.raises(Exception):
            await js.add_stream(StreamConfig(name=stream_name("jobs"), subjects=["evf.*.*.jobs", "evf.*.*.jobs.>"]),
                                timeout=1)
        await alice.nc.close()
        await bob.nc.close()

    asyncio.run(main())


def test_namespaces_are_isolated_and_a_grant_opens_exactly_its_topic(guarded: Any) -> None:
    store = guarded.store
    alice_tok, bob_tok = store.issue_token("alice").secret, store.issue_token("bob").secret

    guarded.control.reload()  # the broker knows the tokens before anyone connects

    async def main() -> None:
        alice = await Conn().open(guarded.server.url, alice_tok)
        bob = await Conn().open(guarded.server.url, bob_tok)
        await bob.received("evf.*.*.users.alice.>")
        assert await wait_for(lambda: bob.violated("users.alice"))
        bob.errors.clear()
        own = await bob.received("evf.*.*.users.bob.>")  # its own namespace is fine
        store.grant("users.alice.shared", "bob", ["subscribe"], granted_by="alice")
        await asyncio.to_thread(guarded.control.reload)  # returns once the broker enforces the grant
        shared = await bob.received("evf.*.*.users.alice.shared.>")  # allowed on the same connection now
        await bob.nc.publish("evf.bob.0.users.bob.note", b"mine")
        for subj in ("evf.alice.0.users.alice.shared.x", "evf.alice.0.users.alice.private.x"):
            await alice.nc.publish(subj, subj.encode())
        await flush(alice.nc)
        await flush(bob.nc)
        assert await wait_for(lambda: shared == [b"evf.alice.0.users.alice.shared.x"]), seen(guarded, alice, bob)
        assert own == [b"mine"]
        assert not bob.violated("users.alice.shared")
        await bob.nc.publish("evf.bob.0.users.alice.shared.x", b"no")  # subscribe only: no publish
        await flush(bob.nc)
        assert await wait_for(lambda: bob.violated('publish to "evf.bob.0.users.alice.shared.x"'))
        await alice.nc.close()
        await bob.nc.close()

    asyncio.run(main())


def test_revoking_a_token_drops_its_connection_within_seconds(guarded: Any) -> None:
    store = guarded.store
    doomed, other = store.issue_token("bob"), store.issue_token("bob")

    guarded.control.reload()  # the broker knows the tokens before anyone connects

    async def main() -> None:
        conn = await Conn().open(guarded.server.url, doomed.secret)
        keep = await Conn().open(guarded.server.url, other.secret)
        got = await keep.received("evf.*.*.users.bob.>")
        store.revoke_token(doomed.info.id)
        t0 = time.monotonic()
        await asyncio.wait_for(conn.disconnected.wait(), 5)
        assert time.monotonic() - t0 < 5
        # the server says why (on the closed connection or on the client's reconnect attempt)
        assert await wait_for(lambda: any("authorization violation" in e.lower() for e in conn.errors), 3)
        assert await connection_refused(guarded.server.url, **nats_options(doomed.secret))
        # the identity's other token keeps working on its existing connection
        await keep.nc.publish("evf.bob.0.users.bob.still", b"ok")
        assert await wait_for(lambda: got == [b"ok"])
        await keep.nc.close()
        await conn.nc.close()

    asyncio.run(main())


def test_an_expiring_token_is_reaped(guarded: Any) -> None:
    tok = guarded.store.issue_token("alice", expires_in=1.5)

    guarded.control.reload()  # the broker knows the tokens before anyone connects

    async def main() -> None:
        conn = await Conn().open(guarded.server.url, tok.secret)
        assert conn.nc.is_connected
        await asyncio.wait_for(conn.disconnected.wait(), 6)
        assert await connection_refused(guarded.server.url, **nats_options(tok.secret))
        await conn.nc.close()

    asyncio.run(main())


def test_reliable_topics_owner_streams_and_grantee_consumers(guarded: Any) -> None:
    """Streams and consumers are made by the topic service: the owner's create and the
    grantee's consumer go through it; direct JetStream creation is refused to both."""
    from evfabric.fabric.streams import TopicConfig, add_consumer, create_topic

    store = guarded.store
    store.register_topic("runs", "alice")
    store.grant("runs", "bob", ["subscribe"])
    store.create_identity("eve")
    alice_tok, bob_tok, eve_tok = (store.issue_token(n).secret for n in ("alice", "bob", "eve"))
    stream = stream_name("runs")

    async def main() -> None:
        alice = await Conn().open(guarded.server.url, alice_tok)
        ajs = alice.nc.jetstream()
        with pytest.raises(Exception):  # not even the owner touches the stream API directly
            await ajs.add_stream(StreamConfig(name=stream, subjects=["evf.*.*.runs", "evf.*.*.runs.>"]), timeout=1)
        await create_topic(ajs, TopicConfig("runs"))
        ack = await ajs.publish("evf.alice.0.runs.r1", b"e1")
        assert ack.stream == stream and ack.seq == 1
        bob = await Conn().open(guarded.server.url, bob_tok)
        bjs = bob.nc.jetstream()
        with pytest.raises(Exception):
            await bjs.add_consumer(stream, ConsumerConfig(durable_name="direct"), timeout=1)
        await add_consumer(bjs, stream, ConsumerConfig(durable_name="bobs"))
        psub = await bjs.pull_subscribe_bind("bobs", stream=stream)
        msgs = await psub.fetch(1, timeout=3)
        assert [m.data for m in msgs] == [b"e1"]
        await msgs[0].ack()
        with pytest.raises(Exception):
            await bjs.publish("evf.bob.0.runs.r2", b"forged", timeout=1)  # subscribe only
        eve = await Conn().open(guarded.server.url, eve_tok)
        with pytest.raises(Exception):
            await add_consumer(eve.nc.jetstream(), stream, ConsumerConfig(durable_name="eves"))
        for c in (alice, bob, eve):
            await c.nc.close()

    guarded.control.reload()  # returns once the broker enforces the tokens and grants above
    asyncio.run(main())


def test_a_client_cannot_read_another_tokens_replies(guarded: Any) -> None:
    store = guarded.store
    tok = store.issue_token("bob").secret

    guarded.control.reload()  # the broker knows the tokens before anyone connects

    async def main() -> None:
        bob = await Conn().open(guarded.server.url, tok)
        await bob.received("_INBOX.>")
        assert await wait_for(lambda: bob.violated('subscription to "_INBOX.>"'))
        await bob.nc.close()

    asyncio.run(main())


def test_the_evfabric_client_works_within_its_grants(guarded: Any) -> None:
    from evfabric.core.errors import AccessDenied
    from evfabric.fabric.aio import connect_async

    store = guarded.store
    store.register_topic("runs", "alice")
    store.grant("runs", "bob", ["subscribe"])
    alice_tok, bob_tok = store.issue_token("alice").secret, store.issue_token("bob").secret

    async def main() -> None:
        url = guarded.server.url
        a = await connect_async(url, auto_topics=False, **nats_options(alice_tok))
        b = await connect_async(url, auto_topics=False, publish_timeout=2.0, **nats_options(bob_tok))
        await a.create_topic("runs")
        got: list[Any] = []
        await b.subscribe("runs.*", listener=lambda ev: got.append(ev.body), delivery="reliable")
        await a.publish("runs.r1", {"x": 1}, delivery="reliable", wait=True)
        assert await wait_for(lambda: got == [{"x": 1}])
        t0 = time.monotonic()
        with pytest.raises(AccessDenied, match="refused"):
            await b.publish("runs.r2", {"x": 2}, delivery="reliable", wait=True)
        assert time.monotonic() - t0 < 1.5  # refused at once, not after the 2 s publish timeout
        await a.close()
        await b.close(timeout=1.0)  # its refused batch will never be confirmed

    guarded.control.reload()  # returns once the broker enforces the tokens and grants above
    asyncio.run(main())


def test_connect_takes_a_token_or_evfabric_token(guarded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from evfabric.core.errors import AccessDenied
    from evfabric.fabric.aio import connect_async

    store = guarded.store
    store.register_topic("obs", "alice")
    alice_tok = store.issue_token("alice").secret

    async def main() -> None:
        url = guarded.server.url
        a = await connect_async(url, auto_topics=False, token=alice_tok)
        await a.create_topic("obs")
        await a.publish("obs.x", {"n": 1}, delivery="reliable", wait=True)
        await a.close()
        monkeypatch.setenv("EVFABRIC_TOKEN", alice_tok)
        b = await connect_async(url, auto_topics=False)  # the token from the environment
        await b.publish("obs.x", {"n": 2}, delivery="reliable", wait=True)
        with pytest.raises(AccessDenied):
            await b.publish("users.bob.x", {"n": 3}, delivery="reliable", wait=True, timeout=3)
        await b.close(timeout=1.0)

    guarded.control.reload()  # returns once the broker enforces the tokens and grants above
    asyncio.run(main())
