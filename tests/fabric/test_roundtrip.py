"""``evfabric.fabric.roundtrip.flush``: its PONG comes after every command sent before it.

nats-py's own ``flush`` writes its PING ahead of the SUBs and PUBs still pending in the client
(see the module doc); the server's trace shows the order in which the commands arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from evfabric.broker.server import BrokerServer
from evfabric.fabric.roundtrip import ORDERED, flush
from evfabric.testing import running_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[BrokerServer]:
    with running_broker(tmp_path / "broker", extra_config={"trace": True}) as srv:
        yield srv


def _commands(server: BrokerServer, client: str) -> list[str]:
    """The protocol commands the server read from the connection named ``client``, in order."""
    cids = set()
    out = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if "<<- [CONNECT" in line and f'"name": "{client}"' in line:
            cids.add(line.split(" - ")[1])
        parts = line.split(" - ")
        if len(parts) > 2 and parts[1] in cids and "<<- [" in parts[-1]:
            out.append(parts[-1].split("<<- [", 1)[1].split(" ", 1)[0].rstrip("]"))
    return out


def _subscribe_then(traced: BrokerServer, name: str, do_flush: Callable[[Any], Awaitable[None]]) -> list[str]:
    async def main() -> None:
        nc = await nats.connect(traced.url, name=name)

        async def cb(_msg: Any) -> None:
            pass

        for i in range(3):
            await nc.subscribe(f"t.{i}", cb=cb)
            await do_flush(nc)
        await nc.publish("t.0", b"x")
        await do_flush(nc)
        await nc.close()

    asyncio.run(main())
    return [c for c in _commands(traced, name) if c != "CONNECT"][1:]  # after the PING of the connect


@pytest.mark.skipif(not ORDERED, reason="this nats-py lacks the internals the ordered flush uses")
def test_the_ping_follows_the_commands_before_it(traced: BrokerServer) -> None:
    assert _subscribe_then(traced, "ordered", flush) == ["SUB", "PING", "SUB", "PING", "SUB", "PING", "PUB", "PING"]


@pytest.mark.skipif(not ORDERED, reason="this nats-py lacks the internals the ordered flush uses")
def test_nats_py_flush_overtakes_what_is_pending(traced: BrokerServer) -> None:
    """Why :func:`flush` exists; if this fails, nats-py fixed its flush and the module doc is out of date."""
    got = _subscribe_then(traced, "plain", lambda nc: nc.flush())
    assert got[:2] == ["PING", "SUB"], got


def test_a_subscription_flushed_in_order_gets_what_another_connection_publishes_next(broker: BrokerServer) -> None:
    """The race the trace shows, end to end: subscribe, flush, and at once publish from another connection."""
    async def main() -> int:
        sub_nc, pub_nc = await nats.connect(broker.url), await nats.connect(broker.url)
        missed = 0
        for i in range(200):
            got: list[bytes] = []

            async def cb(msg: Any, got: list[bytes] = got) -> None:
                got.append(msg.data)

            sub = await sub_nc.subscribe(f"r.{i}", cb=cb)
            await flush(sub_nc)
            await pub_nc.publish(f"r.{i}", b"x")
            await flush(pub_nc)
            await flush(sub_nc)  # the message, if the server routed it, is before this PONG
            await asyncio.sleep(0)
            missed += not got
            await sub.unsubscribe()
        await sub_nc.close()
        await pub_nc.close()
        return missed

    assert asyncio.run(main()) == 0


def test_flush_errors_are_nats_py_s(broker: BrokerServer) -> None:
    async def main() -> None:
        nc = await nats.connect(broker.url)
        with pytest.raises(nats.errors.BadTimeoutError):
            await flush(nc, 0)
        await nc.close()
        with pytest.raises(nats.errors.ConnectionClosedError):
            await flush(nc)

    asyncio.run(main())
