"""Checked by mypy in tests/test_typing.py (never run): the public API as a user writes it."""

from __future__ import annotations

from typing import reveal_type

import evfabric
from evfabric.testing import ManualClock, MemoryBroker


def sync_user() -> None:
    svc = evfabric.EventService(source="me", clock=ManualClock())
    reveal_type(svc.publish("a.b", {"x": 1}))  # R: evfabric.core.event.Event
    sub = svc.subscribe("a.*", "body.x > 0")
    reveal_type(sub)  # R: evfabric.local.subscription.Subscription
    reveal_type(svc.process_events())  # R: int
    client = evfabric.connect("nats://127.0.0.1:4222", source="me")
    reveal_type(client)  # R: evfabric.fabric.client.Client
    reveal_type(client.publish("a.b", {}, delivery="reliable"))  # R: evfabric.core.event.Event
    client.publish("a.b", {}, delivery="relaible")  # type: ignore[arg-type]  # a typo is a type error
    client.subscribe("a.*", start="earliest")
    client.subscribe("a.*", start="erliest")  # type: ignore[arg-type]
    ev = client.publish("a.b", {})
    reveal_type(ev.position)  # R: evfabric.core.position.Position | None
    client.subscribe("a.*", start=evfabric.Position(3, 1))  # an event position, typed
    mem = MemoryBroker().connect(source="t")
    buses: list[evfabric.Bus] = [svc, client, mem]
    for bus in buses:
        reveal_type(bus.subscribe("x.*"))  # R: evfabric.local.subscription.Subscription
    try:
        client.close()
    except evfabric.PublishTimeout as exc:
        reveal_type(exc)  # R: evfabric.core.errors.PublishTimeout
    except evfabric.EvfabricError as exc:
        raise SystemExit(str(exc)) from exc


async def async_user() -> None:
    client = await evfabric.connect_async("nats://127.0.0.1:4222")
    reveal_type(client)  # R: evfabric.fabric.aio.AsyncClient
    mem = await MemoryBroker().connect_async(source="t")
    buses: list[evfabric.AsyncBus] = [client, mem]
    for bus in buses:
        reveal_type(await bus.publish("a.b", {}))  # R: evfabric.core.event.Event
