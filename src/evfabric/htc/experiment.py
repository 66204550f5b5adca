"""Running a job with one approach and measuring it: the experiment behind the demo and the bench.

:func:`run_job` runs one job on given links (in-process, or a broker with the workers in
this process); :func:`run_on_broker` runs it with the workers in child processes, so that the
coordinator's CPU time is its own. Both return a :class:`RunResult`: whether the final status
was complete and exact (every task's state as the workers have it), the freshness figures of
:mod:`evfabric.htc.analysis`, messages and bytes sent by everyone, and the coordinator's CPU.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evfabric.core.errors import ConfigError
from evfabric.htc.analysis import Timeline, summarise, timeline
from evfabric.htc.config import APPROACHES, JobConfig
from evfabric.htc.coordinator import Coordinator, EventCoordinator, PollingCoordinator
from evfabric.htc.host import HostReport, ProcessHosts, WorkerHost
from evfabric.htc.link import Link, WireStats
from evfabric.htc.model import plan_assignments

__all__ = ["RunResult", "make_coordinator", "run_job", "run_on_broker"]

Tick = Callable[[Coordinator], None]


@dataclass
class RunResult:
    """The outcome of one run (see the module docstring)."""

    approach: str
    config: JobConfig
    complete: bool
    exact: bool
    wall_s: float
    coordinator_cpu_s: float
    cpu_includes_workers: bool
    wire: WireStats
    counters: dict[str, int]
    totals: dict[str, int]
    unreachable: list[str]
    timeline: Timeline
    summary: dict[str, float]

    def figures(self) -> dict[str, Any]:
        """The flat figures of this run (JSON-friendly)."""
        return {
            "approach": self.approach,
            "complete": self.complete,
            "exact": self.exact,
            "wall_s": round(self.wall_s, 3),
            **{k: (round(v, 4) if math.isfinite(v) else None) for k, v in self.summary.items()},
            "messages": self.wire.messages,
            "bytes": self.wire.bytes,
            "dropped_on_purpose": self.wire.dropped,
            "coordinator_cpu_s": round(self.coordinator_cpu_s, 3),
            **self.counters,
        }


def make_coordinator(approach: str, cfg: JobConfig, link: Link) -> Coordinator:
    """The coordinator of ``approach`` for the plan of ``cfg``."""
    plan = plan_assignments(cfg.tasks, cfg.worker_ids, cfg.per_assignment)
    if approach == "events":
        return EventCoordinator(cfg.job, link, plan, heartbeat=cfg.worker.heartbeat, misses=cfg.misses,
                                request_timeout=cfg.request_timeout)
    if approach == "polling":
        return PollingCoordinator(cfg.job, link, plan, interval=cfg.poll_interval,
                                  request_timeout=cfg.request_timeout)
    raise ConfigError(f"approach must be one of {APPROACHES}, got {approach!r}")


async def run_job(approach: str, cfg: JobConfig, coordinator_link: Link, hosts: Any, *,
                  on_tick: Tick | None = None, tick_every: float = 0.25) -> RunResult:
    """Run the job of ``cfg`` with ``approach`` and measure it.

    ``hosts``: a :class:`WorkerHost` or :class:`ProcessHosts` (not started yet).
    ``on_tick(coordinator)`` is called every ``tick_every`` s (a live display); its CPU time is
    not charged to the coordinator.
    """
    coord = make_coordinator(approach, cfg, coordinator_link)
    await coord.start()
    await hosts.start()
    wire0 = WireStats().add(coordinator_link.stats)
    tick_cpu = [0.0]

    async def ticking() -> None:
        while True:
            await asyncio.sleep(tick_every)
            c0 = time.thread_time()
            on_tick(coord)  # type: ignore[misc]
            tick_cpu[0] += time.thread_time() - c0

    ticker = asyncio.get_running_loop().create_task(ticking()) if on_tick else None
    origin = time.time()
    cpu0 = time.thread_time()
    await coord.assign()
    complete = await coord.wait_complete(cfg.timeout)
    cpu = time.thread_time() - cpu0 - tick_cpu[0]
    wall = time.time() - origin
    if ticker is not None:
        ticker.cancel()
        if on_tick:
            on_tick(coord)
    await coord.stop()
    reports = await hosts.stop()
    if isinstance(reports, HostReport):
        reports = [reports]
    wire = WireStats().add(coordinator_link.stats)
    wire.messages -= wire0.messages
    wire.bytes -= wire0.bytes
    for r in reports:
        wire.add(r.wire)
    truth_run, truth_end, states = _truth(cfg, reports)
    status = coord.status
    exact = complete and bytes(status.state) == states.tobytes()
    tl = timeline(truth_run, truth_end, np.frombuffer(status.learned_run, dtype=float),
                  np.frombuffer(status.learned_end, dtype=float), origin=origin)
    return RunResult(
        approach=approach, config=cfg, complete=complete, exact=exact, wall_s=wall, coordinator_cpu_s=cpu,
        cpu_includes_workers=isinstance(hosts, WorkerHost), wire=wire, counters=coord.counters(),
        totals=status.totals(), unreachable=status.unreachable, timeline=tl, summary=summarise(tl),
    )


def _truth(cfg: JobConfig, reports: list[HostReport]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    run = np.full(cfg.tasks, np.nan)
    end = np.full(cfg.tasks, np.nan)
    states = np.zeros(cfg.tasks, dtype=np.uint8)
    for report in reports:
        for tasks, st, started, ended in report.truth.values():
            idx = np.asarray(tasks, dtype=np.int64)
            run[idx] = started
            end[idx] = ended
            states[idx] = np.frombuffer(st, dtype=np.uint8)
    return run, end, states


def run_on_broker(approach: str, cfg: JobConfig, url: str, *, processes: int = 1,
                  on_tick: Tick | None = None) -> RunResult:
    """Run on the broker at ``url``: workers in ``processes`` child processes, coordinator here."""
    from evfabric.htc.fabric_link import FabricLink

    async def main() -> RunResult:
        link = await FabricLink.connect(url, f"htc-coordinator-{approach}")
        try:
            hosts = ProcessHosts(cfg, url, approach=approach, processes=processes)
            return await run_job(approach, cfg, link, hosts, on_tick=on_tick)
        finally:
            await link.close()

    return asyncio.run(main())
