"""Untimed tasks as threads: look-ahead inboxes, ordering modes, deadlock detection.

Each task runs in its own thread: ``init()``, then *take an event, handle it* until the whole
program is quiescent, then ``finish()``. Sends are asynchronous (the event is queued in the
receiver's inbox, the sender goes on). A task may also wait for one specific event with
``self.receive(src=..., kind=..., timeout=...)``; events that do not match, or that the
ordering says are not yet deliverable, stay in the inbox and are taken later (look-ahead).

Termination and deadlock are told apart exactly: when every task is blocked, the program has
*terminated* if all inboxes are empty and nobody waits in an explicit ``receive``; otherwise it
is *deadlocked*, and :meth:`Runtime.run` raises
:class:`~evfabric.core.errors.DeadlockDetected` with the wait-for graph (who waits on whom,
which held-back events wait for what, and the cycles). A ``receive`` timeout is the pattern's
middle ground: :class:`~evfabric.core.errors.ReceiveTimeout` in the waiting task only.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from evfabric.coord.ordering import Message, make_ordering
from evfabric.coord.task import Task
from evfabric.core.clocks import VectorClock
from evfabric.core.errors import DeadlockDetected, NotFound, ReceiveTimeout, WorkerFailed

__all__ = ["Runtime", "find_cycles"]


class _Stop(Exception):
    """Unwinds a task thread once the program has ended (terminated, deadlocked or failed)."""


class _Wait:
    """What a blocked task waits for: anything (idle), or one event in an explicit receive."""

    def __init__(self, explicit: bool, src: int | None, kind: str | None) -> None:
        self.explicit, self.src, self.kind = explicit, src, kind

    def __str__(self) -> str:
        what = f"a {self.kind!r} event" if self.kind else "an event"
        return f"{what} from task {self.src}" if self.src is not None else f"{what} from any task"


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


class Runtime:
    """Runs untimed tasks on threads of this process with the given ordering.

    ``ordering`` is ``"none"``, ``"fifo"`` or ``"causal"``. ``jitter`` > 0 makes the
    simulated network reorder events: each is inserted up to ``jitter`` places before the end
    of the receiver's inbox (seeded by ``seed``), which is what the orderings must repair.
    """

    def __init__(self, ordering: str = "none", jitter: int = 0, seed: int = 0) -> None:
        self.ordering = make_ordering(ordering)
        self.jitter = jitter
        self._rng = random.Random(seed)
        self._tasks: list[Task] = []
        self._cond = threading.Condition()
        self._inbox: list[list[Message]] = []
        self._blocked: dict[int, _Wait] = {}
        self._outcome: BaseException | str | None = None
        self.delivered: list[list[Message]] = []  # per task, in delivery order (a trace)

    def add(self, task: Task) -> int:
        """Add a task; returns its id (0, 1, ...), which other tasks use as ``dst``."""
        task.id = len(self._tasks)
        self._tasks.append(task)
        self._inbox.append([])
        self.delivered.append([])
        return task.id

    # -- what tasks call ----------------------------------------------------------------------

    def _send(self, src: int, dst: int, kind: str, data: Any = None, delay: float = 0.0) -> None:
        if not 0 <= dst < len(self._tasks):
            raise NotFound(f"task {src} sent {kind!r} to unknown task {dst}")
        with self._cond:
            if self._outcome is not None:
                raise _Stop
            task = self._tasks[src]
            task._vc = task._vc.tick(str(src))  # type: ignore[attr-defined]
            msg = Message(src, dst, kind, data, vc=task._vc)  # type: ignore[attr-defined]
            self.ordering.stamp(msg)
            box = self._inbox[dst]
            at = len(box) - self._rng.randint(0, min(self.jitter, len(box))) if self.jitter else len(box)
            box.insert(at, msg)
            self._blocked.pop(dst, None)  # the receiver may proceed: it is no longer counted as blocked
            self._cond.notify_all()

    def _take(self, i: int, wait: _Wait, timeout: float | None = None) -> Message:
        deadline = None if timeout is None else time.monotonic() + timeout
        order, box = self.ordering, self._inbox[i]
        with self._cond:
            while True:
                if self._outcome is not None:
                    raise _Stop
                for k, msg in enumerate(box):
                    if (wait.src is None or msg.src == wait.src) and (wait.kind is None or msg.kind == wait.kind) and order.ready(msg):
                        del box[k]
                        order.delivered(msg)
                        task = self._tasks[i]
                        task._vc = task._vc.merge(msg.vc).tick(str(i))  # type: ignore[attr-defined]
                        self.delivered[i].append(msg)
                        return msg
                self._blocked[i] = wait
                if len(self._blocked) == len(self._tasks):
                    self._quiescent()
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    del self._blocked[i]
                    raise ReceiveTimeout(f"task {i} got no {wait} within {timeout}s")
                self._cond.wait(left)
                self._blocked.pop(i, None)

    def _quiescent(self) -> None:
        """Every task is blocked: decide between termination and deadlock (under the lock)."""
        explicit = {i: w for i, w in self._blocked.items() if w.explicit}
        held = {i: box for i, box in enumerate(self._inbox) if box}
        if not explicit and not held:
            self._outcome = "done"
        else:
            self._outcome = DeadlockDetected(self._report(explicit, held))
        self._cond.notify_all()

    def _report(self, explicit: dict[int, _Wait], held: dict[int, list[Message]]) -> str:
        edges: dict[int, set[int]] = {}
        lines = []
        for i, w in sorted(explicit.items()):
            lines.append(f"task {i} waits for {w}")
            edges.setdefault(i, set()).update([w.src] if w.src is not None else range(len(self._tasks)))
        for i, box in sorted(held.items()):
            for msg in box:
                lines.append(f"task {i} holds {msg.kind!r} from task {msg.src}: {self.ordering.explain(msg)}")
        cycles = find_cycles({k: {d for d in v if d != k} for k, v in edges.items()})
        if cycles:
            lines.append("cycles: " + "; ".join(" -> ".join(map(str, c + c[:1])) for c in cycles))
        return "deadlock: every task is blocked\n  " + "\n  ".join(lines)

    # -- running ------------------------------------------------------------------------------

    def _bind(self, task: Task) -> None:
        i = task.id
        task.now = 0.0
        task._vc = VectorClock()  # type: ignore[attr-defined]
        task.send = lambda dst, kind, data=None, delay=0.0: self._send(i, dst, kind, data, delay)  # type: ignore[method-assign]
        task.emit = lambda record: self._emitted.append((i, record))  # type: ignore[method-assign]

        def receive(src: int | None = None, kind: str | None = None, timeout: float | None = None) -> Message:
            return self._take(i, _Wait(True, src, kind), timeout)

        task.receive = receive  # type: ignore[attr-defined]

    def _body(self, task: Task, reports: dict[int, dict[str, Any]], errors: dict[int, BaseException]) -> None:
        idle = _Wait(False, None, None)
        try:
            task.init()
            while True:
                msg = self._take(task.id, idle)
                task.current = msg  # type: ignore[attr-defined]
                task.handle(msg.kind, msg.data)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            errors[task.id] = exc
            with self._cond:
                if self._outcome is None:
                    self._outcome = exc
                self._cond.notify_all()
            return
        if self._outcome == "done":
            reports[task.id] = task.finish()

    def run(self, timeout: float | None = 60.0) -> list[dict[str, Any]]:
        """Run every task to quiescence; return their ``finish`` reports in id order.

        Raises :class:`DeadlockDetected` if the tasks deadlock, :class:`WorkerFailed` if a task
        raises (or the run exceeds ``timeout`` seconds, with who waits on what).
        """
        self._emitted: list[tuple[int, Any]] = []
        reports: dict[int, dict[str, Any]] = {}
        errors: dict[int, BaseException] = {}
        for task in self._tasks:
            self._bind(task)
        threads = [
            threading.Thread(target=self._body, args=(t, reports, errors), daemon=True, name=f"evfabric-task{t.id}")
            for t in self._tasks
        ]
        for th in threads:
            th.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for th in threads:
            th.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(th.is_alive() for th in threads):
            with self._cond:
                waits = ", ".join(f"task {i} waits for {w}" for i, w in sorted(self._blocked.items()))
                self._outcome = WorkerFailed(f"tasks still running after {timeout}s; blocked: {waits or 'none'}")
                self._cond.notify_all()
            raise self._outcome
        if isinstance(self._outcome, DeadlockDetected):
            raise self._outcome
        if errors:
            i = min(errors)
            raise WorkerFailed(f"task {i} failed: {errors[i]!r}") from errors[i]
        return [reports.get(t.id, {}) for t in self._tasks]

    @property
    def emitted(self) -> list[tuple[int, Any]]:
        """(task, record) for every ``emit``, in call order."""
        return list(self._emitted)

