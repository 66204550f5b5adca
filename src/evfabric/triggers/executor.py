"""Running one trigger's action on the events its consumer receives: batching and autoscaling.

Events arrive from the trigger's durable JetStream consumer (a group shared by every runner
replica). The executor groups them into batches of ``batch_size`` (waiting at most
``batch_window`` seconds for a batch to fill), and runs the action on each batch with a pool of
workers whose size follows the backlog: one more worker per waiting batch, up to
``max_concurrency``; a worker idle for ``idle_timeout`` seconds retires, down to
``min_concurrency`` (Octopus scaled its functions to the partitions' pressure the same way).

When an invocation ends, its events are settled on the subscription: success acknowledges them;
failure has the broker redeliver them after a growing delay, and after ``retries`` further
attempts they go to the dead-letter topic. An event is acknowledged only after its action
succeeded, so a replica that dies loses nothing: the broker redelivers its unacknowledged events
to another replica once the acknowledgement wait runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec

from evfabric.core.event import Event
from evfabric.fabric.handler import Settle
from evfabric.triggers.actions import ActionFailed, Invoke
from evfabric.triggers.spec import TriggerSpec

if TYPE_CHECKING:
    from evfabric.fabric.subscription import FabricSubscription

__all__ = ["Invocation", "TriggerExecutor"]


class Invocation(msgspec.Struct, kw_only=True):
    """One run of the action: what it was given, how it ended."""

    trigger: str
    replica: str
    started: float
    duration: float
    events: int
    attempt: int
    status: str  # ok | failed (will be retried) | dead_lettered
    error: str | None = None
    totals: dict[str, int] = {}


GROUP_LIMIT = 64  # invocations one thread hop may run back to back


def _run_all(blocking: Any, group: list[list[Event]]) -> list[tuple[float, float, BaseException | None]]:
    """Run invocations one after the other in this (worker) thread; each one's start, duration, error."""
    out: list[tuple[float, float, BaseException | None]] = []
    for batch in group:
        started = time.time()
        t0 = time.perf_counter()
        try:
            blocking.run(batch)
            out.append((started, time.perf_counter() - t0, None))
        except Exception as exc:
            out.append((started, time.perf_counter() - t0, exc))
    return out


class TriggerExecutor:
    """Batches and runs a trigger's action with an autoscaled pool of asyncio workers."""

    def __init__(
        self,
        spec: TriggerSpec,
        invoke: Invoke,
        replica: str,
        on_invocation: Callable[[Invocation], None],
        idle_timeout: float = 1.0,
    ) -> None:
        self.spec = spec
        self.invoke = invoke
        self.replica = replica
        self.on_invocation = on_invocation
        self.idle_timeout = idle_timeout
        self.sub: FabricSubscription | None = None
        self._settles: dict[int, Settle] = {}  # id(event) -> its message's settle, until the action ends
        self.threads = ThreadPoolExecutor(max_workers=spec.max_concurrency, thread_name_prefix=f"trigger-{spec.name}")
        self._ready: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._filling: list[Event] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self.busy = 0
        self.peak = 0
        self.history: list[tuple[float, int]] = []  # (monotonic time, workers) at every change
        self.totals = {"invocations": 0, "ok": 0, "failed": 0, "dead_lettered": 0, "events": 0}
        self._closed = False

    # -- intake (on the client's loop) -------------------------------------------------------

    def handle(self, events: list[Event], settle: Settle) -> None:
        """The :class:`~evfabric.fabric.handler.EventHandler` side: queue a message's events;
        each is settled when the invocation that runs it ends."""
        settles = self._settles
        for ev in events:
            settles[id(ev)] = settle
        self.offer(events)

    def offer(self, events: list[Event]) -> None:
        """Queue events for the action (called on the event loop by the subscription)."""
        if self._closed:
            return
        size = self.spec.batch_size
        self._filling.extend(events)
        while len(self._filling) >= size:
            self._ready.put_nowait(self._filling[:size])
            del self._filling[:size]
        if self._filling:
            if self.spec.batch_window <= 0:
                self._flush()
            elif self._flush_handle is None:
                loop = asyncio.get_running_loop()
                self._flush_handle = loop.call_later(self.spec.batch_window, self._flush)
        self._scale()

    def _flush(self) -> None:
        self._flush_handle = None
        if self._filling:
            self._ready.put_nowait(self._filling)
            self._filling = []
            self._scale()

    # -- the pool -------------------------------------------------------------------------------

    @property
    def workers(self) -> int:
        """Workers alive now (the trigger's current concurrency)."""
        return len(self._workers)

    def _note(self) -> None:
        self.history.append((time.monotonic(), len(self._workers)))
        if len(self.history) > 10_000:
            del self.history[:5_000]
        self.peak = max(self.peak, len(self._workers))

    def _scale(self) -> None:
        want = min(self.spec.max_concurrency, max(self.spec.min_concurrency, self.busy + self._ready.qsize()))
        while len(self._workers) < want and not self._closed:
            task = asyncio.get_running_loop().create_task(self._work(), name=f"trigger-{self.spec.name}")
            self._workers.add(task)
            self._note()

    def start(self) -> None:
        """Start the minimum number of workers (on the running loop)."""
        self._scale()

    async def _work(self) -> None:
        me = asyncio.current_task()
        blocking = getattr(self.invoke, "blocking", None)
        try:
            while not self._closed:
                try:
                    batch = await asyncio.wait_for(self._ready.get(), self.idle_timeout)
                except TimeoutError:
                    if len(self._workers) > self.spec.min_concurrency:
                        return  # idle: retire (scale down)
                    continue
                self.busy += 1
                try:
                    if blocking is None:
                        await self._run(batch)
                    else:
                        await self._run_blocking(blocking, self._group(batch))
                finally:
                    self.busy -= 1
        finally:
            self._workers.discard(me)
            self._note()

    def _group(self, first: list[Event]) -> list[list[Event]]:
        """This worker's fair share of the waiting batches (one hop to the thread for all)."""
        share = min(GROUP_LIMIT, -(-self._ready.qsize() // self.spec.max_concurrency))
        group = [first]
        while len(group) <= share and not self._ready.empty():
            group.append(self._ready.get_nowait())
        return group

    async def _run(self, batch: list[Event]) -> None:
        started = time.time()
        t0 = time.perf_counter()
        error: BaseException | None = None
        try:
            await self.invoke(batch, self.spec.timeout)
        except Exception as exc:
            error = exc
        self._finish(batch, started, time.perf_counter() - t0, error)

    async def _run_blocking(self, blocking: Any, group: list[list[Event]]) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.spec.timeout * len(group)
        try:
            results = await asyncio.wait_for(loop.run_in_executor(self.threads, _run_all, blocking, group), timeout)
        except TimeoutError:
            failed = ActionFailed(f"{self.spec.action.target} timed out after {self.spec.timeout}s per invocation")
            results = [(time.time(), timeout, failed)] * len(group)
        for batch, (started, duration, error) in zip(group, results):
            self._finish(batch, started, duration, error)

    def _finish(self, batch: list[Event], started: float, duration: float, error: BaseException | None) -> None:
        settles = [self._settles.pop(id(ev), None) for ev in batch]
        attempt = max(s.attempt if s is not None else 1 for s in settles)
        if error is None:
            status = "ok"
        elif attempt > self.spec.retries:
            status = "dead_lettered"
        else:
            status = "failed"
        t = self.totals
        t["invocations"] += 1
        t[status] += 1
        t["events"] += len(batch)
        for ev, settle in zip(batch, settles):
            if settle is not None:
                settle(ev, error)
        self.on_invocation(
            Invocation(
                trigger=self.spec.name,
                replica=self.replica,
                started=started,
                duration=duration,
                events=len(batch),
                attempt=attempt,
                status=status,
                error=None if error is None else str(error),
                totals=dict(t),
            )
        )

    async def close(self) -> None:
        """Stop the workers (events not yet acted on stay unacknowledged: the broker redelivers them)."""
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        for task in list(self._workers):
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self.threads.shutdown(wait=False, cancel_futures=True)

    def status(self) -> dict[str, Any]:
        """Current concurrency, backlog and counters."""
        return {
            "workers": self.workers,
            "busy": self.busy,
            "backlog_batches": self._ready.qsize(),
            "filling": len(self._filling),
            "peak_workers": self.peak,
            **self.totals,
        }
