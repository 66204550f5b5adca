"""The coordinator: hands out a job and keeps its status, by events or by polling.

Both coordinators share :class:`Coordinator`: the plan (assignments per worker), the
:class:`~evfabric.htc.status.JobStatus`, the ``assign`` step (one request per worker) and
:meth:`Coordinator.wait_complete`. They differ in how the status is kept:

* :class:`EventCoordinator` only listens. Task messages move tasks forward; metric messages
  record threshold crossings; heartbeats are signs of life. **Reconciliation**: a gap in a
  worker's sequence numbers (seen on a later message or on a heartbeat) means a lost message,
  and the coordinator asks that worker for a snapshot (one at a time per worker, again until no
  gap is left). A node silent for ``misses`` heartbeat periods is marked unreachable (and
  reachable again if it speaks).
* :class:`PollingCoordinator` asks every worker for its snapshot, one after the other, round
  after round (``interval`` seconds from the start of one round to the next, or back to back if
  a round takes longer), as in the Nitro post. A request that fails or times out marks the node
  unreachable ("you either get a response or the node is presumed unreachable").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from evfabric.core.errors import EvfabricError
from evfabric.htc.link import Body, Link
from evfabric.htc.model import BATCH, HEARTBEAT, METRIC, TASK, Assignment, ctl_topic, up_pattern
from evfabric.htc.reconcile import SeqTracker
from evfabric.htc.status import JobStatus

__all__ = ["Coordinator", "EventCoordinator", "PollingCoordinator"]

REQUEST_FAILED = (EvfabricError, TimeoutError, asyncio.TimeoutError, ConnectionError)


class Coordinator:
    """What both coordinators share. Subclasses implement :meth:`start`."""

    approach = "?"

    def __init__(self, job: str, link: Link, plan: dict[str, list[Assignment]], *,
                 request_timeout: float = 2.0) -> None:
        self.job = job
        self.link = link
        self.plan = plan
        self.request_timeout = request_timeout
        self.status = JobStatus(plan)
        self.requests = 0
        self.failed_requests = 0
        self.completed_at: float | None = None
        self._complete = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.running = True  # loops also check this: a cancellation can be lost inside a request

    async def start(self) -> None:
        """Begin keeping the status (before :meth:`assign`, so no news is missed)."""
        raise NotImplementedError

    async def assign(self) -> None:
        """Send every worker its assignments (concurrently); the job starts now."""
        self.status.touch_all()

        async def one(worker: str, assignments: list[Assignment]) -> None:
            await self._request(worker, {"op": "assign", "a": [a.as_body() for a in assignments]})

        await asyncio.gather(*(one(w, a) for w, a in self.plan.items()))

    async def _request(self, worker: str, body: Body) -> Body:
        self.requests += 1
        try:
            return await self.link.request(ctl_topic(self.job, worker), body, self.request_timeout)
        except REQUEST_FAILED:
            self.failed_requests += 1
            raise

    def _merge_snapshot(self, reply: Body, now: float) -> None:
        worker = reply["w"]
        self.status.apply_snapshot(worker, reply["st"], now)
        node = self.status.nodes[worker]
        node.metrics = dict(reply.get("m") or {})
        node.alarms = dict(reply.get("ms") or {})
        self.status.seen(worker, now)
        self._check_complete(now)

    def _check_complete(self, now: float) -> None:
        if self.completed_at is None and self.status.complete:
            self.completed_at = now
            self._complete.set()

    async def wait_complete(self, timeout: float | None = None) -> bool:
        """Wait until the status shows every task finished; False on timeout."""
        try:
            await asyncio.wait_for(self._complete.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        """Stop listening/polling tasks."""
        self.running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def counters(self) -> dict[str, int]:
        """Requests made and failed (subclasses add theirs)."""
        return {"requests": self.requests, "failed_requests": self.failed_requests}


class EventCoordinator(Coordinator):
    """Keeps the status from events; reconciles on gaps; watches heartbeats."""

    approach = "events"

    def __init__(self, job: str, link: Link, plan: dict[str, list[Assignment]], *,
                 heartbeat: float = 0.5, misses: int = 3, request_timeout: float = 2.0) -> None:
        super().__init__(job, link, plan, request_timeout=request_timeout)
        self.heartbeat = heartbeat
        self.misses = misses
        self.trackers = {w: SeqTracker() for w in plan}
        self.messages = 0
        self.snapshots = 0
        self.marked_unreachable = 0
        self._reconciling: set[str] = set()

    async def start(self) -> None:
        await self.link.subscribe(up_pattern(self.job), self._on_message)

    async def assign(self) -> None:
        await super().assign()
        if self.heartbeat > 0:  # silence counts from the moment the job starts
            self._spawn(self._watch())

    def _on_message(self, topic: str, body: Body) -> None:
        self.messages += 1
        now = time.time()
        if body.get("k") == BATCH:
            for item in body["items"]:
                self._handle(item, now)
        else:
            self._handle(body, now)
        self._check_complete(now)

    def _handle(self, body: Body, now: float) -> None:
        worker = body.get("w")
        tracker = self.trackers.get(worker) if isinstance(worker, str) else None
        if tracker is None or not isinstance(worker, str):
            return  # not a worker of this job
        kind = body.get("k")
        self.status.seen(worker, now)
        if kind == HEARTBEAT:
            tracker.announce(body["s"])
        elif kind == TASK:
            if tracker.receive(body["s"]):
                self.status.apply_tasks(body.get("r", ()), body.get("d", ()), body.get("f", ()), now)
        elif kind == METRIC:
            if tracker.receive(body["s"]):
                node = self.status.nodes[worker]
                node.metrics[body["m"]] = body["v"]
                node.alarms[body["m"]] = body["st"]
        if tracker.gap and worker not in self._reconciling:
            self._reconciling.add(worker)
            self._spawn(self._reconcile(worker))

    async def _reconcile(self, worker: str) -> None:
        try:
            while self.running and self.trackers[worker].gap:
                try:
                    reply = await self._request(worker, {"op": "status"})
                except REQUEST_FAILED:
                    return  # the heartbeat watch decides whether the node is gone
                self.snapshots += 1
                self.trackers[worker].covered(reply["s"])
                self._merge_snapshot(reply, time.time())
        finally:
            self._reconciling.discard(worker)

    async def _watch(self) -> None:
        limit = self.misses * self.heartbeat
        while self.running:
            await asyncio.sleep(self.heartbeat / 2)
            now = time.time()
            for node in self.status.nodes.values():
                if node.reachable and now - node.last_seen > limit:
                    node.reachable = False
                    self.marked_unreachable += 1

    def counters(self) -> dict[str, int]:
        return {
            **super().counters(),
            "messages_in": self.messages,
            "gaps": sum(t.lost_noticed for t in self.trackers.values()),
            "snapshots": self.snapshots,
            "marked_unreachable": self.marked_unreachable,
        }


class PollingCoordinator(Coordinator):
    """Keeps the status by asking each worker in turn, round after round."""

    approach = "polling"

    def __init__(self, job: str, link: Link, plan: dict[str, list[Assignment]], *,
                 interval: float = 0.5, request_timeout: float = 2.0) -> None:
        super().__init__(job, link, plan, request_timeout=request_timeout)
        self.interval = interval
        self.rounds = 0
        self.round_times: list[float] = []
        self.marked_unreachable = 0

    async def start(self) -> None:
        return None  # polling begins after the assignment: see assign()

    async def assign(self) -> None:
        await super().assign()
        self._spawn(self._poll())

    async def _poll(self) -> None:
        while self.running:
            began = time.time()
            for worker in self.plan:
                if not self.running:
                    return
                try:
                    reply = await self._request(worker, {"op": "status"})
                except REQUEST_FAILED:
                    node = self.status.nodes[worker]
                    if node.reachable:
                        node.reachable = False
                        self.marked_unreachable += 1
                    continue
                self._merge_snapshot(reply, time.time())
            self.rounds += 1
            took = time.time() - began
            self.round_times.append(took)
            await asyncio.sleep(max(0.0, self.interval - took))

    def counters(self) -> dict[str, int]:
        rounds = sorted(self.round_times)
        median_ms = int(1000 * rounds[len(rounds) // 2]) if rounds else 0
        return {**super().counters(), "rounds": self.rounds, "round_ms_median": median_ms,
                "marked_unreachable": self.marked_unreachable}
