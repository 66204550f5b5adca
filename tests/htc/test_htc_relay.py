"""Relays: events from many workers pass through one or two levels of relays, individually or
batched, in order (no false gaps), and the coordinator's status is exact."""

import asyncio

import pytest
from _htc_helpers import run_local

from evfabric.htc import JobConfig, LocalHub, Relay, WorkerConfig
from evfabric.htc.model import relay_topic


@pytest.mark.parametrize("mode", ["individual", "batch"])
def test_job_through_relays_is_exact(mode):
    cfg = JobConfig(tasks=800, workers=8, per_assignment=20, task_time=0.01, relays=3, relay_mode=mode,
                    relay_interval=0.02, worker=WorkerConfig(interval=0.02, heartbeat=0.1), timeout=20)
    r = run_local("events", cfg)
    assert r.complete and r.exact
    assert r.counters["gaps"] == 0  # relays keep each worker's messages in order
    if mode == "batch":
        assert r.counters["messages_in"] < r.wire.messages / 2  # the coordinator gets bundles


def test_two_level_tree_batches_and_flattens_in_order():
    async def main():
        fabric = LocalHub()
        got: list[tuple[str, dict]] = []
        top = Relay("top", "j", fabric.link("top"), mode="batch", interval=0.05)
        leaves = [Relay(f"leaf{i}", "j", fabric.link(f"leaf{i}"), uplink=top.input_topic(f"leaf{i}"),
                        mode="batch", interval=0.01) for i in range(2)]
        await fabric.link("c").subscribe("htc.j.up.?", lambda topic, body: got.append((topic, body)))
        for relay in (top, *leaves):
            await relay.start()
        sender = fabric.link("workers")
        for n in range(1, 51):
            for w in range(4):
                await sender.publish(relay_topic("j", f"leaf{w % 2}", f"w{w}"), {"k": "task", "w": f"w{w}", "s": n})
            if n % 10 == 0:
                await asyncio.sleep(0.02)
        await fabric.service.drain()  # every task message is in a leaf's queue
        for relay in leaves:
            await relay.stop()  # forwards what it holds to the top
        await fabric.service.drain()
        await top.stop()
        await fabric.service.drain()
        fabric.close()
        return got, top

    got, top = asyncio.run(main())
    assert {t for t, _ in got} == {"htc.j.up.top"}
    assert all(b["k"] == "batch" and all(i["k"] == "task" for i in b["items"]) for _, b in got)  # flattened
    items = [i for _, b in got for i in b["items"]]
    for w in range(4):
        assert [i["s"] for i in items if i["w"] == f"w{w}"] == list(range(1, 51))
    assert top.sent == len(got) < 200 / 4
