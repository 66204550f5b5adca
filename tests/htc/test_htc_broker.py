"""Through the real broker: both approaches on the same workers, events with injected loss."""

import asyncio

import pytest

from evfabric.htc import JobConfig, WorkerConfig, WorkerHost, run_job, run_on_broker
from evfabric.htc.fabric_link import FabricLink

pytestmark = pytest.mark.broker


def test_events_with_loss_and_polling_on_a_real_broker(broker):
    cfg = JobConfig(tasks=1000, workers=8, per_assignment=25, task_time=0.01, loss=0.1, timeout=20,
                    worker=WorkerConfig(interval=0.02, heartbeat=0.1))

    async def events():
        coord_link = await FabricLink.connect(broker.url, "coordinator")
        host_link = await FabricLink.connect(broker.url, "host")
        try:
            return await run_job("events", cfg, coord_link, WorkerHost(cfg, host_link, approach="events"))
        finally:
            await coord_link.close()
            await host_link.close()

    ev = asyncio.run(events())
    assert ev.complete and ev.exact and ev.wire.dropped > 0 and ev.counters["snapshots"] > 0
    assert ev.wire.messages > 0 and ev.wire.bytes > 0

    # polling, with the workers in a child process (the demo's layout)
    po = run_on_broker("polling", cfg, broker.url)
    assert po.complete and po.exact and po.counters["rounds"] >= 1
    assert po.totals == ev.totals  # same seeds, same workers: the same tasks fail
    assert not po.cpu_includes_workers and ev.cpu_includes_workers
