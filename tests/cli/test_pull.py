"""Pull-style consumption, the same on in-process and fabric subscriptions:
``for ev in sub.events(timeout=...)``, ``sub.next(timeout)``, ``async for ev in sub``."""

from __future__ import annotations

import asyncio
import threading

import pytest

import evfabric
from evfabric.core.errors import ReceiveTimeout

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("mode", ["sync", "threads"])
def test_local_events_next_and_timeout(mode: str) -> None:
    svc = evfabric.EventService(mode=mode)  # type: ignore[arg-type]
    sub = svc.subscribe("runs.*")
    first = sub.next  # the pull inbox exists from the first pull call on
    with pytest.raises(ReceiveTimeout):
        first(timeout=0.05)
    for i in range(5):
        svc.publish("runs.a", {"i": i})
    assert sub.next(timeout=5).body == {"i": 0}
    got = [ev.body["i"] for ev in sub.events(timeout=0.3)]
    assert got == [1, 2, 3, 4]
    svc.close()


def test_local_async_for() -> None:
    async def main() -> list[int]:
        svc = evfabric.EventService(mode="asyncio")
        sub = svc.subscribe("runs.*")
        it = sub.__aiter__()
        for i in range(3):
            svc.publish("runs.a", {"i": i})
        out = [(await it.__anext__()).body["i"] for _ in range(3)]
        with pytest.raises(ReceiveTimeout):
            await sub.anext(timeout=0.05)
        svc.close()
        return out

    assert asyncio.run(main()) == [0, 1, 2]


@pytest.mark.broker
@pytest.mark.parametrize("delivery", ["best_effort", "reliable"])
def test_fabric_events_and_next(broker, delivery: str) -> None:
    with evfabric.connect(broker.url, source="puller") as c:
        sub = c.subscribe(f"pull{delivery[0]}.*", delivery=delivery)
        with pytest.raises(ReceiveTimeout):
            sub.next(timeout=0.1)
        with evfabric.connect(broker.url, source="pusher") as p:
            for i in range(10):
                p.publish(f"pull{delivery[0]}.x", {"i": i}, delivery=delivery)
            p.flush(10)
        got = [ev.body["i"] for ev in sub.events(timeout=3)]
        assert sorted(got) == list(range(10))


@pytest.mark.broker
def test_fabric_async_for(broker) -> None:
    async def main() -> list[int]:
        c = await evfabric.connect_async(broker.url, source="apull")
        sub = await c.subscribe("apull.*")
        for i in range(5):
            await c.publish("apull.x", {"i": i})
        out: list[int] = []
        async for ev in sub:
            out.append(ev.body["i"])
            if len(out) == 5:
                break
        await c.close()
        return out

    assert asyncio.run(main()) == list(range(5))


def test_next_returns_when_unsubscribed() -> None:
    svc = evfabric.EventService(mode="threads")
    sub = svc.subscribe("x.*")
    t = threading.Timer(0.2, sub.unsubscribe)
    t.start()
    with pytest.raises(ReceiveTimeout, match="ended"):
        sub.next()
    svc.close()


def test_events_before_the_first_pull_are_kept_and_a_listener_takes_over() -> None:
    svc = evfabric.EventService(mode="threads")
    pulled = svc.subscribe("early.*")  # no listener: keeps events for its first pull
    pushed = svc.subscribe("early.*")
    seen: list[int] = []
    pushed.add_listener(lambda ev: seen.append(ev.body["i"]))
    for i in range(3):
        svc.publish("early.x", {"i": i})
    svc.process_events(5)
    assert [pulled.next(timeout=5).body["i"] for _ in range(3)] == [0, 1, 2]
    assert seen == [0, 1, 2] and pushed.listeners == (pushed.listeners[0],)  # its inbox stepped aside
    svc.close()
