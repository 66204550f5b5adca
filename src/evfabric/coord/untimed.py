"""The engine of untimed tasks: one thread per task, look-ahead inboxes, the wait-for report.

:class:`Engine` runs the tasks it holds on threads of this process. Every task has an inbox;
a task takes the first event that its wait matches and the ordering allows, and blocks when
there is none. Both untimed runtimes are built on it: :class:`~evfabric.coord.runtime.Runtime`
(all tasks in one process, which decides termination itself) and the per-PE engine of
:mod:`evfabric.coord.runtime_pe` (some tasks per processing element; a coordinator decides).

What they share is here too: the wait-for graph's cycles (:func:`find_cycles`), the deadlock
report (:func:`deadlock_report`) and the decision between termination and deadlock
(:func:`decide`), so that a deadlock reads the same on threads, processes and MPI ranks.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from evfabric.coord.ordering import Message, make_ordering
from evfabric.coord.task import Task
from evfabric.core.clocks import VectorClock
from evfabric.core.errors import DeadlockDetected, NotFound, ReceiveTimeout

__all__ = ["Engine", "Held", "Wait", "deadlock_report", "decide", "find_cycles"]

# (receiver, kind, sender, why it is not deliverable): an event left in an inbox at the end.
Held = tuple[int, str, int, str]


class Stop(Exception):
    """Unwinds a task thread once the program has ended (terminated, deadlocked or failed)."""


class Wait:
    """What a blocked task waits for: anything (idle), or one event in an explicit receive.

    ``deadline`` (``time.monotonic()``) is set for a receive with a timeout: such a wait is not
    part of a deadlock, since it ends by itself (:meth:`timed`).
    """

    def __init__(self, explicit: bool, src: int | None, kind: str | None, deadline: float | None = None) -> None:
        self.explicit, self.src, self.kind, self.deadline = explicit, src, kind, deadline

    @property
    def timed(self) -> bool:
        """True if this wait ends by itself at its deadline (a receive with a timeout)."""
        return self.deadline is not None

    def __str__(self) -> str:
        what = f"a {self.kind!r} event" if self.kind else "an event"
        return f"{what} from task {self.src}" if self.src is not None else f"{what} from any task"


IDLE = Wait(False, None, None)


def find_cycles(edges: dict[int, set[int]]) -> list[list[int]]:
    """Elementary cycles of a small wait-for graph, each rotated to start at its least node."""
    cycles: set[tuple[int, ...]] = set()

    def walk(start: int, node: int, path: list[int]) -> None:
        for nxt in edges.get(node, ()):
            if nxt == start:
                i = path.index(min(path))
                cycles.add(tuple(path[i:] + path[:i]))
            elif nxt not in path and nxt > start:
                walk(start, nxt, path + [nxt])

    for s in sorted(edges):
        walk(s, s, [s])
    return [list(c) for c in sorted(cycles)]


def deadlock_report(size: int, waits: dict[int, Wait], held: list[Held]) -> str:
    """The text of a deadlock among ``size`` tasks: explicit waits, held-back events, cycles.

    A wait for "any task" is an edge to every other task.
    """
    edges: dict[int, set[int]] = {}
    lines = []
    for i, w in sorted(waits.items()):
        lines.append(f"task {i} waits for {w}")
        edges.setdefault(i, set()).update([w.src] if w.src is not None else range(size))
    for i, kind, src, why in sorted(held, key=lambda h: h[0]):
        lines.append(f"task {i} holds {kind!r} from task {src}: {why}")
    cycles = find_cycles({k: {d for d in v if d != k} for k, v in edges.items()})
    if cycles:
        lines.append("cycles: " + "; ".join(" -> ".join(map(str, c + c[:1])) for c in cycles))
    return "deadlock: every task is blocked\n  " + "\n  ".join(lines)


def decide(size: int, waits: dict[int, Wait], held: list[Held]) -> str | DeadlockDetected:
    """Every task is blocked and nothing is in flight: ``"done"`` if nobody waits in an explicit
    receive and every inbox is empty, else the :class:`DeadlockDetected` to raise."""
    if not waits and not held:
        return "done"
    return DeadlockDetected(deadlock_report(size, waits, held))


class Engine:
    """Runs the tasks it holds (global ids ``0 .. size-1``, not all necessarily here) on threads.

    ``ordering`` is ``"none"``, ``"fifo"`` or ``"causal"``. ``jitter`` > 0 makes the simulated
    network reorder events: each is inserted up to ``jitter`` places before the end of the
    receiver's inbox (seeded by ``seed``), which is what the orderings must repair.
    Subclasses decide what happens when every local task is blocked (:meth:`_on_all_blocked`)
    and where an event for a task held elsewhere goes (:meth:`_route`).
    """

    def __init__(self, ordering: str = "none", jitter: int = 0, seed: int = 0) -> None:
        self.ordering = make_ordering(ordering)
        self.jitter = jitter
        self._rng = random.Random(seed)
        self._size = 0  # tasks in the whole program
        self._local: dict[int, Task] = {}
        self._cond = threading.Condition()
        self._inbox: dict[int, list[Message]] = {}
        self._blocked: dict[int, Wait] = {}
        self._outcome: BaseException | str | None = None
        self._emitted: list[tuple[int, Any]] = []
        self.delivered: dict[int, list[Message]] = {}  # per task, in delivery order (a trace)

    def _hold(self, task: Task, i: int) -> None:
        """Make task ``i`` one of the tasks this engine runs."""
        task.id = i
        self._local[i] = task
        self._inbox[i] = []
        self.delivered[i] = []

    # -- what tasks call (under the lock) ------------------------------------------------------

    def _send(self, src: int, dst: int, kind: str, data: Any = None, delay: float = 0.0) -> None:
        if not 0 <= dst < self._size:
            raise NotFound(f"task {src} sent {kind!r} to unknown task {dst}")
        with self._cond:
            if self._outcome is not None:
                raise Stop
            task = self._local[src]
            task._vc = task._vc.tick(str(src))
            msg = Message(src, dst, kind, data, vc=task._vc)
            self.ordering.stamp(msg)
            self._route(msg)

    def _route(self, msg: Message) -> None:
        """Pass a stamped message on (under the lock); here: into the receiver's inbox."""
        self._enqueue(msg)

    def _enqueue(self, msg: Message) -> None:
        box = self._inbox[msg.dst]
        at = len(box) - self._rng.randint(0, min(self.jitter, len(box))) if self.jitter else len(box)
        box.insert(at, msg)
        self._blocked.pop(msg.dst, None)  # the receiver may proceed: it is no longer counted as blocked
        self._cond.notify_all()

    def _take(self, i: int, wait: Wait, timeout: float | None = None) -> Message:
        deadline = wait.deadline
        order, box = self.ordering, self._inbox[i]
        with self._cond:
            while True:
                if self._outcome is not None:
                    raise Stop
                for k, msg in enumerate(box):
                    if (wait.src is None or msg.src == wait.src) and (wait.kind is None or msg.kind == wait.kind) and order.ready(msg):
                        del box[k]
                        order.delivered(msg)
                        task = self._local[i]
                        task._vc = task._vc.merge(msg.vc).tick(str(i))
                        self.delivered[i].append(msg)
                        self._activity()
                        return msg
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._activity()
                    raise ReceiveTimeout(f"task {i} got no {wait} within {timeout}s")
                self._blocked[i] = wait
                if self._stuck() and self._on_all_blocked():
                    continue
                self._cond.wait(left)
                self._blocked.pop(i, None)

    def _stuck(self) -> bool:
        """Every local task is blocked, none of them in a wait with a deadline (under the lock).

        A receive with a timeout ends by itself, so while one is pending nothing is decided:
        the timeout fires in its task, which may retry, send, or end its turn.
        """
        blocked = self._blocked
        return len(blocked) == len(self._local) and not any(w.timed for w in blocked.values())

    def _activity(self) -> None:
        """A task took an event or gave up waiting (under the lock); hook for counting."""

    def _on_all_blocked(self) -> bool:
        """Every local task is blocked (under the lock); True if the outcome is now decided."""
        raise NotImplementedError

    def _local_state(self) -> tuple[dict[int, Wait], list[Held]]:
        """Explicit waits and events left in the inboxes here (under the lock)."""
        waits = {i: w for i, w in self._blocked.items() if w.explicit}
        held = [(i, m.kind, m.src, self.ordering.explain(m)) for i, box in self._inbox.items() for m in box]
        return waits, held

    # -- running ------------------------------------------------------------------------------

    def _bind(self, task: Task) -> None:
        i = task.id
        task.now = 0.0
        task._vc = VectorClock()
        task.send = lambda dst, kind, data=None, delay=0.0: self._send(i, dst, kind, data, delay)
        task.emit = lambda record: self._emitted.append((i, record))

        def receive(src: int | None = None, kind: str | None = None, timeout: float | None = None) -> Message:
            deadline = None if timeout is None else time.monotonic() + timeout
            return self._take(i, Wait(True, src, kind, deadline), timeout)

        task.receive = receive

    def _body(self, task: Task, reports: dict[int, dict[str, Any]], errors: dict[int, BaseException]) -> None:
        try:
            task.init()
            while True:
                msg = self._take(task.id, IDLE)
                task.current = msg
                task.handle(msg.kind, msg.data)
        except Stop:
            pass
        except BaseException as exc:
            errors[task.id] = exc
            with self._cond:
                if self._outcome is None:
                    self._outcome = exc
                self._cond.notify_all()
            return
        if self._outcome == "done":
            reports[task.id] = task.finish()

    def _start(self, reports: dict[int, dict[str, Any]], errors: dict[int, BaseException]) -> list[threading.Thread]:
        """Bind every local task and start its thread."""
        for task in self._local.values():
            self._bind(task)
        threads = [
            threading.Thread(target=self._body, args=(t, reports, errors), daemon=True, name=f"evfabric-task{t.id}")
            for t in self._local.values()
        ]
        for th in threads:
            th.start()
        return threads

    def _waiting(self) -> str:
        """Who is blocked on what (under the lock), for time-limit errors."""
        return ", ".join(f"task {i} waits for {w}" for i, w in sorted(self._blocked.items())) or "none"
