"""The worker: runs its node's tasks and tells the coordinator what changed, as configured.

A :class:`Worker` answers two requests on its control topic: ``assign`` (a list of assignments,
queued at once and run ``slots`` at a time) and ``status`` (a snapshot: every assigned task's
state, the node's metrics, and the last message sequence number sent). The snapshot is what a
polling coordinator asks for every round, and what an event-driven coordinator asks for only
when it notices a lost message.

What the worker emits (``WorkerConfig.emit``, Nitro's three ways plus none):

* ``each``: one task message per state change, sent at once;
* ``interval``: changes collected and sent every ``interval`` seconds (if any);
* ``count``: sent when ``count`` changes are collected, or when the worker goes idle;
* ``assignment``: one message when an assignment (a batch of tasks) is finished, listing its
  done and failed tasks (starts are not reported);
* ``none``: nothing (the polling baseline).

Unless ``emit`` is ``none`` it also sends a heartbeat every ``heartbeat`` seconds and a metric
message whenever a node metric crosses its threshold (with hysteresis). Task and metric messages
are numbered 1, 2, 3...; heartbeats carry the last number sent.

The worker keeps, for measurement only, the true time each of its tasks started and ended
(:attr:`Worker.started_at`, :attr:`Worker.ended_at`); nothing it sends depends on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.htc.link import Body, Link
from evfabric.htc.model import (
    DONE,
    FAILED,
    HEARTBEAT,
    METRIC,
    QUEUED,
    RUNNING,
    TASK,
    Assignment,
    ctl_topic,
    up_topic,
)
from evfabric.htc.thresholds import DEFAULT_THRESHOLDS, HostMetrics, SimulatedMetrics, Threshold, ThresholdSpec

__all__ = ["EMIT_MODES", "Worker", "WorkerConfig"]

EMIT_MODES = ("each", "interval", "count", "assignment", "none")
_KEY = {RUNNING: "r", DONE: "d", FAILED: "f"}  # body key of the task list per new state
NAN = float("nan")


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker runs tasks and reports (see the module docstring for ``emit``)."""

    slots: int = 4
    emit: str = "interval"
    interval: float = 0.1
    count: int = 50
    heartbeat: float = 0.5
    metrics_every: float = 0.25
    thresholds: tuple[ThresholdSpec, ...] = DEFAULT_THRESHOLDS
    host_metrics: bool = False

    def __post_init__(self) -> None:
        if self.emit not in EMIT_MODES:
            raise ConfigError(f"emit must be one of {EMIT_MODES}, got {self.emit!r}")
        if self.slots < 1 or self.interval <= 0 or self.count < 1 or self.heartbeat < 0 or self.metrics_every < 0:
            raise ConfigError("need slots >= 1, interval > 0, count >= 1, heartbeat >= 0, metrics_every >= 0")


TaskRunner = Callable[[int], Awaitable[bool]]


class Worker:
    """One compute node's worker. ``start()`` serves its control topic; tasks run once assigned."""

    def __init__(
        self,
        worker_id: str,
        job: str,
        link: Link,
        runner: TaskRunner,
        config: WorkerConfig = WorkerConfig(),
        *,
        uplink: str | None = None,
        seed: int = 0,
    ) -> None:
        self.id = worker_id
        self.job = job
        self.link = link
        self.runner = runner
        self.config = config
        self.uplink = uplink or up_topic(job, worker_id)
        self.ctl = ctl_topic(job, worker_id)
        self.seq = 0
        self.tasks: list[int] = []
        self.states = bytearray()
        self.started_at: list[float] = []
        self.ended_at: list[float] = []
        self._position: dict[int, int] = {}
        self._queue: deque[tuple[int, int]] = deque()
        self._left: dict[int, list[int]] = {}  # assignment id -> [tasks left, first position, size]
        self._busy = 0
        self._slots: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._pending: dict[int, list[int]] = {RUNNING: [], DONE: [], FAILED: []}
        self._npending = 0
        self._send_lock = asyncio.Lock()
        self.thresholds = [Threshold(spec) for spec in config.thresholds]
        self.metrics: dict[str, float] = {}
        self.read_metrics: Callable[[], dict[str, float]] = (
            HostMetrics(seed) if config.host_metrics else SimulatedMetrics(self.utilisation, seed)
        )
        self.alive = False
        self._rng = random.Random(seed)

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the control topic and start heartbeats, metrics and the interval flusher."""
        await self.link.serve(self.ctl, self._handle)
        self.alive = True
        cfg = self.config
        if cfg.emit != "none":
            if cfg.heartbeat > 0:
                self._every(cfg.heartbeat, self._heartbeat)
            if cfg.metrics_every > 0 and self.thresholds:
                self._every(cfg.metrics_every, self._sample_metrics)
            if cfg.emit == "interval":
                self._every(cfg.interval, self.flush)

    def _every(self, period: float, action: Callable[[], Awaitable[None]]) -> None:
        async def loop() -> None:
            await asyncio.sleep(self._rng.uniform(0.0, period))  # nodes do not tick in step
            while True:
                await asyncio.sleep(period)
                await action()

        self._background.append(asyncio.get_running_loop().create_task(loop()))

    async def stop(self) -> None:
        """Send what is pending, stop reporting, stop serving. Running tasks are cancelled."""
        if self.config.emit in ("interval", "count", "each"):
            await self.flush()
        await self._halt()

    async def kill(self) -> None:
        """Die abruptly: no more messages, no more answers (a crashed node)."""
        await self._halt()

    async def _halt(self) -> None:
        self.alive = False
        tasks = [*self._background, *self._slots]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._background.clear()
        self._slots.clear()
        await self.link.unserve(self.ctl)

    # -- requests -----------------------------------------------------------------------------------

    async def _handle(self, body: Body) -> Body:
        op = body.get("op")
        if op == "status":
            return self.snapshot()
        if op == "assign":
            return {"ok": True, "tasks": self.assign([Assignment.from_body(a) for a in body["a"]])}
        raise ConfigError(f"unknown request op {op!r}")

    def snapshot(self) -> Body:
        """Everything the coordinator needs to know, as of now (also the polling response)."""
        return {
            "w": self.id,
            "s": self.seq,
            "t": time.time(),
            "st": bytes(self.states),
            "m": dict(self.metrics),
            "ms": {th.spec.metric: th.state for th in self.thresholds},
        }

    def assign(self, assignments: list[Assignment]) -> int:
        """Queue ``assignments``; return how many tasks this worker now has."""
        for a in assignments:
            self._left[a.id] = [len(a.tasks), len(self.tasks), len(a.tasks)]
            for task in a.tasks:
                self._position[task] = len(self.tasks)
                self.tasks.append(task)
                self._queue.append((a.id, task))
        self.states.extend(bytes(sum(len(a.tasks) for a in assignments)))
        grow = len(self.tasks) - len(self.started_at)
        self.started_at.extend([NAN] * grow)
        self.ended_at.extend([NAN] * grow)
        loop = asyncio.get_running_loop()
        while len(self._slots) < self.config.slots and len(self._slots) < len(self._queue):
            slot = loop.create_task(self._slot())
            self._slots.add(slot)
            slot.add_done_callback(self._slots.discard)
        return len(self.tasks)

    # -- running tasks ------------------------------------------------------------------------------

    def utilisation(self) -> float:
        """Busy slots / slots."""
        return self._busy / self.config.slots

    @property
    def idle(self) -> bool:
        """No task queued or running."""
        return not self._queue and self._busy == 0

    async def _slot(self) -> None:
        while self._queue:
            aid, task = self._queue.popleft()
            pos = self._position[task]
            self._busy += 1
            self.states[pos] = RUNNING
            self.started_at[pos] = time.time()
            await self._changed(RUNNING, task)
            try:
                ok = await self.runner(task)
            finally:
                self._busy -= 1
            new = DONE if ok else FAILED
            self.states[pos] = new
            self.ended_at[pos] = time.time()
            await self._changed(new, task)
            left = self._left[aid]
            left[0] -= 1
            if left[0] == 0:
                await self._assignment_finished(aid, left[1], left[2])
        if self.config.emit == "count" and self.idle:
            await self.flush()

    async def _changed(self, state: int, task: int) -> None:
        emit = self.config.emit
        if emit in ("none", "assignment"):
            return
        self._pending[state].append(task)
        self._npending += 1
        if emit == "each" or (emit == "count" and self._npending >= self.config.count):
            await self.flush()

    async def _assignment_finished(self, aid: int, first: int, size: int) -> None:
        if self.config.emit != "assignment":
            return
        tasks = self.tasks[first : first + size]
        states = self.states[first : first + size]
        done = [t for t, s in zip(tasks, states) if s == DONE]
        failed = [t for t, s in zip(tasks, states) if s == FAILED]
        await self._send({"k": TASK, "w": self.id, "a": aid, "d": done, "f": failed})

    # -- sending ------------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Send the collected task changes as one message (nothing if none)."""
        if not self._npending:
            return
        body: Body = {"k": TASK, "w": self.id}
        for state, tasks in self._pending.items():
            if tasks:
                body[_KEY[state]] = tasks
        self._pending = {RUNNING: [], DONE: [], FAILED: []}
        self._npending = 0
        await self._send(body)

    async def _send(self, body: Body) -> None:
        # numbering and sending under one lock keeps the numbers in sending order
        async with self._send_lock:
            self.seq += 1
            body["s"] = self.seq
            body["t"] = time.time()
            await self.link.publish(self.uplink, body)

    async def _heartbeat(self) -> None:
        async with self._send_lock:
            await self.link.publish(self.uplink, {"k": HEARTBEAT, "w": self.id, "s": self.seq, "t": time.time()})

    async def _sample_metrics(self) -> None:
        self.metrics = self.read_metrics()
        for th in self.thresholds:
            value = self.metrics.get(th.spec.metric)
            if value is None:
                continue
            crossed = th.update(value)
            if crossed is not None:
                await self._send({"k": METRIC, "w": self.id, "m": th.spec.metric, "v": value, "st": crossed})

    def position(self, task: int) -> int:
        """Index of ``task`` in :attr:`tasks` (and in snapshots' state bytes)."""
        return self._position[task]

    def summary(self) -> dict[str, Any]:
        """Tasks per state on this node (its own, true view)."""
        counts = [0, 0, 0, 0]
        for s in self.states:
            counts[s] += 1
        return {"worker": self.id, "queued": counts[QUEUED], "running": counts[RUNNING], "done": counts[DONE],
                "failed": counts[FAILED], "seq": self.seq}
