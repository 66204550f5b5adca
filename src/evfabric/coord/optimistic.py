"""Optimistic timestamp order (Time Warp): handle events at once, undo what proves premature.

Each PE handles its pending events in key order without waiting. Before each event the task's
state is saved; the event, the snapshot, the events it sent and its outside-world actions form
a *record*. A *straggler* (an event earlier than what a task already handled) rolls that task
back: its state is restored, its undone events become pending again and every event they sent
is retracted by an *anti-message* (annihilated if still pending, rolling its receiver back if
already handled). Rounds end with one all-to-all that carries the batches and each PE's
earliest possible time stamp; their minimum is the GVT (global virtual time): nothing earlier
can ever be rolled back, so records below it are committed (their ``emit`` actions released to
the outside world) and their snapshots freed (fossil collection).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from heapq import heappop, heappush
from typing import Any

from evfabric.coord.kernel import INF, Kernel, PEResult, after
from evfabric.coord.program import Program
from evfabric.coord.task import Task
from evfabric.coord.throttle import Throttle
from evfabric.core.errors import CausalityError

__all__ = ["run_optimistic"]

Event = tuple[Any, ...]
Record = list[Any]  # [event, snapshot before it, events it sent or None, its emitted records or None]


def _ts(record: Record) -> float:
    return record[0][0]


class TimeWarp:
    """The optimistic machinery of one PE, on top of a :class:`Kernel`."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        n = kernel.program.size
        self.history: list[list[Record]] = [[] for _ in range(n)]
        self.last: list[Event] = [(-INF,)] * n  # the last event each task handled
        self.cancelled: set[tuple[int, int]] = set()  # (src, seq) of annihilated pending events
        self.antibox: list[list[Event]] = [[] for _ in range(kernel.size)]
        self._retract: list[Event] = []  # local events to annihilate (a work list, no recursion)
        self._committed_last: dict[int, Event] = {}
        self._emitters: set[int] = set()  # tasks that ever emitted: only their records are scanned at commit
        self._remote = [0]  # remote sends not (yet) retracted: at the end, the committed ones
        self._live: set[int] = set()  # tasks with uncommitted records: the only ones to collect
        self._collections = 0
        self.reached = -INF  # time stamp of the last event handled
        for i in kernel.mine:
            task = kernel.tasks[i]
            assert task is not None
            task.send = self._make_send(task)
            task.emit = self._make_emit(task)

    def _make_send(self, task: Task) -> Any:
        heap, owner, me, outbox, i = self.k.heap, self.k.owner, self.k.rank, self.k.outbox, task.id
        last, remote = self.last, self._remote
        seq = self.k.seqs[i]  # never rewound: re-sent events get fresh ids

        # Defaults instead of closure cells: see Kernel._make_send.
        def send(dst: int, kind: str, data: Any = None, delay: float = 0.0, _task: Task = task, _i: int = i,
                 _seq: Any = seq, _heap: list[Any] = heap, _owner: list[int] = owner, _me: int = me,
                 _outbox: list[list[Any]] = outbox, _last: list[Event] = last, _remote: list[int] = remote) -> None:
            if delay < 0:
                raise CausalityError(f"task {_i} sent {kind!r} to {dst} with negative delay {delay}")
            now = _task.now
            t = now + delay
            ev = (t, _task._ev[1] + 1 if t == now else 0, _i, _seq(), dst, kind, data)
            rec = _task._rec
            if rec[2] is None:
                rec[2] = [ev]
            else:
                rec[2].append(ev)
            pe = _owner[dst]
            if pe == _me:
                if ev < _last[dst]:  # possible after a partial rollback of this PE's tasks
                    self._rollback(dst, ev, None)
                    self.drain()
                heappush(_heap, ev)
            else:
                _outbox[pe].append(ev)
                _remote[0] += 1

        return send

    def _make_emit(self, task: Task) -> Any:
        emitters = self._emitters

        def emit(record: Any) -> None:
            rec = task._rec
            if rec[3] is None:
                rec[3] = []
                emitters.add(task.id)
            rec[3].append(record)

        return emit

    # -- forward execution --------------------------------------------------------------------

    def process(self, limit: float, budget: int) -> int:
        """Handle up to ``budget`` pending events below ``limit``, saving state before each."""
        k = self.k
        heap, tasks, history, last, cancelled = k.heap, k.tasks, self.history, self.last, self.cancelled
        live, handlers = self._live.add, k.handlers
        n = 0
        reached = self.reached
        while heap and n < budget:
            ev = heappop(heap)
            t, _, src, seq, d, kind, data = ev
            if cancelled and (src, seq) in cancelled:
                cancelled.discard((src, seq))
                continue
            if t >= limit:
                heappush(heap, ev)
                break
            task = tasks[d]
            rec: Record = [ev, task.save(), None, None]
            task._rec = rec
            h = history[d]
            if not h:
                live(d)  # a task with records: fossil collection looks at it
            h.append(rec)
            last[d] = ev
            task.now = t
            task._ev = ev
            handlers[d](task, kind, data)
            n += 1
            reached = t
        k.stats.processed += n
        self.reached = reached
        return n

    # -- rollback -----------------------------------------------------------------------------

    def receive(self, ev: Event) -> None:
        """A positive event from another PE: roll its task back if it is a straggler."""
        d = ev[4]
        if ev < self.last[d]:
            self._rollback(d, ev, None)
        heappush(self.k.heap, ev)

    def annihilate(self, key: Event) -> None:
        """Retract the event ``(ts, gen, src, seq, dst)``: drop it if pending, else roll back."""
        self._retract.append(key)
        self.drain()

    def drain(self) -> None:
        """Annihilate the local events that rollbacks retracted, and those they retract in turn."""
        work = self._retract
        while work:
            key = work.pop()
            d = key[4]
            if key <= self.last[d]:  # already handled: undo from it on, and drop it
                self._rollback(d, key, (key[2], key[3]))
            else:
                self.cancelled.add((key[2], key[3]))

    def _rollback(self, d: int, key: Event, drop: tuple[int, int] | None) -> None:
        h = self.history[d]
        undone: list[Record] = []
        while h and h[-1][0] >= key:
            undone.append(h.pop())
        if not undone:
            return
        task = self.k.tasks[d]
        task.restore(undone[-1][1])  # type: ignore[union-attr]
        heap, owner, me = self.k.heap, self.k.owner, self.k.rank
        for ev, _, sent, _ in undone:
            if drop is None or (ev[2], ev[3]) != drop:
                heappush(heap, ev)
            for s in sent or ():
                pe = owner[s[4]]
                if pe == me:
                    self._retract.append(s[:5])
                else:
                    self.antibox[pe].append(s[:5])
                    self.k.stats.anti_messages += 1
                    self._remote[0] -= 1
        self.k.stats.rolled_back += len(undone)
        self.last[d] = h[-1][0] if h else self._committed_last.get(d, (-INF,))
        # A task whose earlier records are fossil-collected keeps its last committed event.

    # -- commit -------------------------------------------------------------------------------

    def fossil_collect(self, gvt: float) -> None:
        """Commit every record below ``gvt``: release its outputs, count it, free its snapshot."""
        k = self.k
        outputs, counts, history = k.outputs, k.counts, self.history
        self._collections += 1
        release = self._collections % 16 == 0  # freeing old snapshots' helpers can wait a little
        done = []
        for d in self._live:
            h = history[d]
            if h and h[0][0][0] < gvt:
                n = len(h) if h[-1][0][0] < gvt else bisect_left(h, gvt, key=_ts)
                if d in self._emitters:
                    for ev, _, _, emitted in h[:n]:
                        if emitted:
                            outputs.extend((ev[:4], record) for record in emitted)
                self._committed_last[d] = h[n - 1][0]
                counts[d] += n
                del h[:n]
            if release:
                k.tasks[d].release(h[0][1] if h else None)  # type: ignore[union-attr]
                if not h:
                    done.append(d)
        self._live.difference_update(done)


def run_optimistic(
    program: Program,
    owner: list[int],
    transport: Any,
    until: float,
    batch: int | None = None,
    window: float | None = None,
    adaptive: bool = True,
) -> PEResult:
    """One PE's share of an optimistic run.

    ``batch`` bounds the events handled between two GVT rounds (default 1024); ``window``
    bounds optimism in simulated time (events later than GVT + window wait for the next round;
    default unbounded). With ``adaptive`` (the default) both are caps and the PE throttles
    below them from the rollbacks it observes (:mod:`evfabric.coord.throttle`).
    """
    me, size = transport.rank, transport.size
    kernel = Kernel(program, owner, me, size)
    kernel.init_tasks()  # init is never rolled back: its sends are plain
    tw = TimeWarp(kernel)
    stats, end = kernel.stats, after(until)
    throttle = Throttle(batch, window, adaptive)
    gvt = -INF
    while True:
        start, undone = gvt, stats.rolled_back
        handled = tw.process(throttle.limit(gvt, end), throttle.batch)
        msgs = []
        sent_min = INF
        for p in range(size):
            pos, anti = kernel.take_outbox(p), tw.antibox[p]
            tw.antibox[p] = []
            for ev in pos:
                sent_min = min(sent_min, ev[0])
            for a in anti:
                sent_min = min(sent_min, a[0])
            msgs.append((pos, anti))
        mine = min(kernel.next_time(), sent_min)
        t0 = time.perf_counter()
        got = transport.exchange([(pos, anti, mine) for pos, anti in msgs])
        stats.sync_seconds += time.perf_counter() - t0
        for p, (pos, anti, _) in enumerate(got):
            if p == me:
                continue
            for ev in pos:
                tw.receive(ev)
            for a in anti:
                tw.annihilate(a)
        tw.drain()
        gvt = min(m for _, _, m in got)
        tw.fossil_collect(gvt)
        throttle.observe(start, tw.reached, handled, stats.rolled_back - undone)
        stats.rounds += 1
        if gvt >= end:
            break
    stats.remote = tw._remote[0]
    return kernel.finish(until)
