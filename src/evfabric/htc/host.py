"""Hosting many workers (and the relays) in one process, on one link.

A :class:`WorkerHost` builds the workers named by a :class:`~evfabric.htc.config.JobConfig`
(all, or a slice), gives each its simulated runner and its (possibly lossy) link, and starts,
stops or kills them. :func:`host_process` is the entry point of a child process that hosts
workers on a real broker and answers commands over a pipe, so that the coordinator's process
does only the coordinator's work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from evfabric.core.errors import NotFound
from evfabric.htc.config import JobConfig
from evfabric.htc.link import Link, LossyLink, WireStats
from evfabric.htc.relay import Relay
from evfabric.htc.runners import SimulatedRunner
from evfabric.htc.worker import Worker

__all__ = ["HostReport", "ProcessHosts", "WorkerHost", "host_process"]


@dataclass
class HostReport:
    """What a host hands back at the end: true task times and what it sent."""

    truth: dict[str, tuple[list[int], bytes, list[float], list[float]]]  # worker -> tasks, states, started, ended
    wire: WireStats
    relays_forwarded: int


class WorkerHost:
    """Workers ``indices`` of the job (default: all) and, if ``with_relays``, its relays."""

    def __init__(self, cfg: JobConfig, link: Link, *, approach: str,
                 indices: list[int] | None = None, with_relays: bool = True) -> None:
        self.cfg = cfg
        self.link = link
        # the polling baseline runs the same workers with reporting switched off
        wcfg = cfg.worker if approach == "events" else replace(cfg.worker, emit="none")
        ids = cfg.worker_ids
        self.workers: dict[str, Worker] = {}
        for i in indices if indices is not None else range(cfg.workers):
            worker_link: Link = link
            if cfg.loss > 0:
                worker_link = LossyLink(link, cfg.loss, seed=cfg.seed * 1_000_003 + i)
            runner = SimulatedRunner(cfg.task_time, cfg.fail_rate, seed=cfg.seed * 7919 + i)
            self.workers[ids[i]] = Worker(ids[i], cfg.job, worker_link, runner, wcfg, uplink=cfg.uplink(i), seed=cfg.seed + i)
        self.relays = [
            Relay(r, cfg.job, link, mode=cfg.relay_mode, interval=cfg.relay_interval)
            for r in (cfg.relay_ids if with_relays and approach == "events" else [])
        ]

    async def start(self) -> None:
        """Start relays, then workers (they serve their control topics from now on)."""
        for relay in self.relays:
            await relay.start()
        for worker in self.workers.values():
            await worker.start()
        await self.link.flush()

    async def kill(self, worker_id: str) -> None:
        """Crash one worker (no more messages, no more replies)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            raise NotFound(f"no worker {worker_id!r} in this host")
        await worker.kill()

    async def stop(self) -> HostReport:
        """Stop everything (workers first, then relays flush), and report."""
        for worker in self.workers.values():
            if worker.alive:
                await worker.stop()
        for relay in self.relays:
            await relay.stop()
        await self.link.flush()
        truth = {w.id: (list(w.tasks), bytes(w.states), list(w.started_at), list(w.ended_at))
                 for w in self.workers.values()}
        return HostReport(truth, WireStats().add(self.link.stats), sum(r.sent for r in self.relays))


def host_process(url: str, cfg: JobConfig, approach: str, indices: list[int], with_relays: bool, conn: Any) -> None:
    """Child-process entry: host workers on the broker at ``url``; obey ``conn`` commands.

    Sends ``"ready"`` once serving; then handles ``("kill", worker_id)`` and ``("stop",)``,
    answering the latter with a :class:`HostReport`.
    """
    asyncio.run(_serve_commands(url, cfg, approach, indices, with_relays, conn))


async def _serve_commands(url: str, cfg: JobConfig, approach: str, indices: list[int], with_relays: bool,
                          conn: Any) -> None:
    from evfabric.htc.fabric_link import FabricLink

    link = await FabricLink.connect(url, f"htc-host-{indices[0] if indices else 0}")
    host = WorkerHost(cfg, link, approach=approach, indices=indices, with_relays=with_relays)
    await host.start()
    conn.send("ready")
    loop = asyncio.get_running_loop()
    try:
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "kill":
                await host.kill(command[1])
                conn.send("killed")
            elif command[0] == "stop":
                conn.send(await host.stop())
                return
    finally:
        await link.close()


class ProcessHosts:
    """The workers split over ``processes`` child processes on the broker at ``url``.

    The same ``start`` / ``kill`` / ``stop`` as :class:`WorkerHost`, driven over pipes; relays
    live in the first process.
    """

    def __init__(self, cfg: JobConfig, url: str, *, approach: str, processes: int = 1) -> None:
        import multiprocessing

        self.cfg = cfg
        ctx = multiprocessing.get_context("spawn")  # no inherited loop or sockets
        self._owner: dict[str, int] = {}
        self._procs: list[Any] = []
        self._pipes: list[Any] = []
        n = max(1, min(processes, cfg.workers))
        for p in range(n):
            indices = list(range(p, cfg.workers, n))
            for i in indices:
                self._owner[cfg.worker_ids[i]] = p
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=host_process, args=(url, cfg, approach, indices, p == 0, theirs),
                               name=f"htc-host-{p}", daemon=True)
            self._procs.append(proc)
            self._pipes.append(mine)

    async def _recv(self, p: int, timeout: float = 120.0) -> Any:
        pipe = self._pipes[p]
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, pipe.poll, timeout)
        if not ready:
            raise TimeoutError(f"worker host {p} did not answer within {timeout} s")
        return pipe.recv()

    async def start(self) -> None:
        """Start the processes; return once every one serves its workers."""
        for proc in self._procs:
            proc.start()
        for p in range(len(self._procs)):
            if await self._recv(p) != "ready":
                raise NotFound(f"worker host {p} failed to start")

    async def kill(self, worker_id: str) -> None:
        """Crash one worker in whichever process hosts it."""
        p = self._owner[worker_id]
        self._pipes[p].send(("kill", worker_id))
        await self._recv(p)

    async def stop(self) -> list[HostReport]:
        """Stop every process and collect their reports."""
        for pipe in self._pipes:
            pipe.send(("stop",))
        reports = [await self._recv(p) for p in range(len(self._procs))]
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        return reports
