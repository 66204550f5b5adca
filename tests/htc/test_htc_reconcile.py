"""Reconciliation: lost best-effort messages are noticed from sequence numbers and repaired by
snapshots (the final status is exact); a killed worker is marked unreachable after missed heartbeats."""

import asyncio
import time

from _htc_helpers import run_local

from evfabric.htc import (
    JobConfig,
    LocalHub,
    SeqTracker,
    SimulatedRunner,
    Worker,
    WorkerConfig,
    WorkerHost,
    make_coordinator,
    plan_assignments,
)
from evfabric.htc.coordinator import EventCoordinator


def test_seq_tracker_finds_gaps_and_snapshots_close_them():
    t = SeqTracker()
    assert t.receive(1) and t.receive(2) and not t.gap
    assert not t.receive(2)  # duplicate
    assert t.receive(4) and t.gap and t.lost_noticed == 1  # 3 is missing
    assert t.receive(5) and t.gap and t.lost_noticed == 1  # still the same gap
    t.covered(3)  # a snapshot taken after message 3 was sent
    assert t.watermark == 5 and not t.gap
    assert not t.receive(3)  # late copy of covered news is skipped
    t.announce(7)  # a heartbeat: 6 and 7 were sent, never arrived (lost tail)
    assert t.gap and t.lost_noticed == 2
    t.covered(7)
    assert not t.gap


def test_status_is_exact_despite_lost_events():
    cfg = JobConfig(tasks=1500, workers=6, per_assignment=25, task_time=0.01, loss=0.25, timeout=20,
                    worker=WorkerConfig(interval=0.02, heartbeat=0.05))
    r = run_local("events", cfg)
    assert r.wire.dropped > 0
    assert r.counters["gaps"] > 0 and r.counters["snapshots"] > 0
    assert r.complete and r.exact
    assert r.totals["done"] + r.totals["failed"] == 1500


class DropFirstTaskMessage:
    """A link that loses the worker's first task message: its only one, in assignment mode."""

    def __init__(self, inner):
        self.inner, self.stats, self.dropped = inner, inner.stats, False

    async def publish(self, topic, body):
        if body.get("k") == "task" and not self.dropped:
            self.dropped = True
            return
        await self.inner.publish(topic, body)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_lost_last_message_is_noticed_from_heartbeats():
    async def main():
        fabric = LocalHub()
        plan = plan_assignments(20, ["w0"], 20)
        cfg = WorkerConfig(emit="assignment", heartbeat=0.05)
        worker = Worker("w0", "j", DropFirstTaskMessage(fabric.link("w0")), SimulatedRunner(0.001), cfg)
        coord = EventCoordinator("j", fabric.link("c"), plan, heartbeat=0.05)
        await coord.start()
        await worker.start()
        await coord.assign()
        complete = await coord.wait_complete(5)
        counters = coord.counters()
        await coord.stop()
        await worker.stop()
        fabric.close()
        return complete, counters, worker.seq

    complete, counters, seq = asyncio.run(main())
    assert seq == 1  # the only task message was the one lost
    assert complete and counters["gaps"] == 1 and counters["snapshots"] >= 1


def _kill_one(approach: str) -> tuple[list[str], float, float, bool]:
    async def main():
        cfg = JobConfig(tasks=400, workers=4, per_assignment=10, task_time=0.02, misses=3,
                        worker=WorkerConfig(heartbeat=0.05, interval=0.02), poll_interval=0.05,
                        request_timeout=0.2)
        fabric = LocalHub()
        host = WorkerHost(cfg, fabric.link("host"), approach=approach)
        coord = make_coordinator(approach, cfg, fabric.link("c"))
        await coord.start()
        await host.start()
        await coord.assign()
        await asyncio.sleep(0.2)
        killed_at = time.time()
        await host.kill("w0001")
        marked_at = None
        for _ in range(200):
            if coord.status.unreachable:
                marked_at = time.time()
                break
            await asyncio.sleep(0.01)
        unreachable = coord.status.unreachable
        complete = await coord.wait_complete(1.0)
        await coord.stop()
        await host.stop()
        fabric.close()
        return unreachable, killed_at, marked_at, complete

    return asyncio.run(main())


def test_killed_worker_is_marked_unreachable_after_missed_heartbeats():
    unreachable, killed_at, marked_at, complete = _kill_one("events")
    assert unreachable == ["w0001"]
    assert marked_at is not None and marked_at - killed_at >= 3 * 0.05 - 0.06  # not before ~3 silent periods
    assert not complete  # its tasks never finish, and the status says so


def test_polling_marks_a_killed_worker_unreachable():
    unreachable, _, marked_at, complete = _kill_one("polling")
    assert unreachable == ["w0001"] and marked_at is not None and not complete
