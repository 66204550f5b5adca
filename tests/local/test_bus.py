"""EventService implements the Bus protocol (the fabric clients' conformance is checked by mypy
in tests/test_typing.py)."""

from __future__ import annotations

from evfabric.bus import Bus
from evfabric.core.event import Event
from evfabric.local.service import EventService
from evfabric.local.subscription import Subscription


def _echo(bus: Bus) -> Subscription:
    return bus.subscribe("in.*", listener=lambda ev: bus.publish("out.x", {"n": ev.body["n"]}))


def test_event_service_is_a_bus() -> None:
    svc = EventService()
    assert isinstance(svc, Bus)
    got: list[Event] = []
    svc.subscribe("out.x", listener=got.append)
    _echo(svc)
    events = svc.publish_many("in.a", [{"n": i} for i in range(3)])
    assert [e.body["n"] for e in events] == [0, 1, 2]
    svc.flush()
    assert [e.body["n"] for e in got] == [0, 1, 2]
    svc.close()
