"""Untimed tasks: look-ahead inboxes, ordering modes, deadlock detection; threads, processes, MPI.

Each task runs in its own thread: ``init()``, then *take an event, handle it* until the whole
program is quiescent, then ``finish()``. Sends are asynchronous (the event is queued in the
receiver's inbox, the sender goes on). A task may also wait for one specific event with
``self.receive(src=..., kind=..., timeout=...)``; events that do not match, or that the
ordering says are not yet deliverable, stay in the inbox and are taken later (look-ahead).

Termination and deadlock are told apart exactly: when every task is blocked and no event is in
flight, the program has *terminated* if all inboxes are empty and nobody waits in an explicit
``receive``; otherwise it is *deadlocked*, and :meth:`Runtime.run` raises
:class:`~evfabric.core.errors.DeadlockDetected` with the wait-for graph (who waits on whom,
which held-back events wait for what, and the cycles). A ``receive`` timeout is the pattern's
middle ground: :class:`~evfabric.core.errors.ReceiveTimeout` in the waiting task only.

``placement="threads"`` (default) runs every task in this process. ``"processes"`` and
``"mpi"`` spread the tasks over processing elements (PEs), several per PE, each still a
thread; see :mod:`evfabric.coord.runtime_pe` for how events cross PEs and how a coordinator
detects termination there.
"""

from __future__ import annotations

import time
from typing import Any

from evfabric.coord.placement import balance
from evfabric.coord.runtime_pe import run_on_mpi, run_on_processes
from evfabric.coord.task import Task
from evfabric.coord.untimed import Engine, decide, find_cycles
from evfabric.core.errors import ConfigError, DeadlockDetected, WorkerFailed

__all__ = ["UNTIMED_PLACEMENTS", "Runtime", "find_cycles"]

UNTIMED_PLACEMENTS = ("threads", "processes", "mpi")


class Runtime(Engine):
    """Runs untimed tasks with the given ordering, on threads, processes or MPI ranks.

    ``ordering`` is ``"none"``, ``"fifo"`` or ``"causal"``; ``jitter`` > 0 makes the simulated
    network reorder events inside each inbox (seeded by ``seed``), which the orderings repair.
    ``placement`` is ``"threads"`` (one process), ``"processes"`` (``workers`` processes of
    this node, *spawn* context: tasks must be picklable) or ``"mpi"`` (every rank of an
    ``mpiexec`` launch builds the same runtime and calls :meth:`run`; each rank runs its share,
    the world size is the number of PEs). ``owner[i]`` fixes the PE of task ``i`` (default:
    :func:`~evfabric.coord.placement.balance` with equal weights).
    """

    def __init__(
        self,
        ordering: str = "none",
        jitter: int = 0,
        seed: int = 0,
        *,
        placement: str = "threads",
        workers: int = 2,
        owner: list[int] | None = None,
    ) -> None:
        super().__init__(ordering, jitter, seed)
        if placement not in UNTIMED_PLACEMENTS:
            raise ConfigError(f"placement must be one of {UNTIMED_PLACEMENTS} for untimed tasks, not {placement!r}")
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, not {workers}")
        self.placement, self.workers, self.owner = placement, workers, owner
        self._ordering_name, self._seed = ordering, seed

    def add(self, task: Task) -> int:
        """Add a task; returns its id (0, 1, ...), which other tasks use as ``dst``."""
        self._hold(task, self._size)
        self._size += 1
        return task.id

    def _on_all_blocked(self) -> bool:
        # Every task of the program is here and blocked, and an event in flight would sit in an
        # inbox: the decision is exact.
        self._outcome = decide(self._size, *self._local_state())
        self._cond.notify_all()
        return True

    def run(self, timeout: float | None = 60.0) -> list[dict[str, Any]]:
        """Run every task to quiescence; return their ``finish`` reports in id order.

        Raises :class:`DeadlockDetected` if the tasks deadlock, :class:`WorkerFailed` if a task
        raises (or the run exceeds ``timeout`` seconds, with who waits on what). With processes
        or MPI, :attr:`delivered` and :attr:`emitted` are gathered from every PE afterwards.
        """
        if self.placement != "threads":
            return self._run_spread(timeout)
        reports: dict[int, dict[str, Any]] = {}
        errors: dict[int, BaseException] = {}
        threads = self._start(reports, errors)
        deadline = None if timeout is None else time.monotonic() + timeout
        for th in threads:
            th.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(th.is_alive() for th in threads):
            with self._cond:
                self._outcome = WorkerFailed(f"tasks still running after {timeout}s; blocked: {self._waiting()}")
                self._cond.notify_all()
            raise self._outcome
        if isinstance(self._outcome, DeadlockDetected):
            raise self._outcome
        if errors:
            i = min(errors)
            raise WorkerFailed(f"task {i} failed: {errors[i]!r}") from errors[i]
        return [reports.get(i, {}) for i in range(self._size)]

    def _run_spread(self, timeout: float | None) -> list[dict[str, Any]]:
        tasks = [self._local[i] for i in range(self._size)]
        config = (self._ordering_name, self.jitter, self._seed, timeout)
        if self.placement == "processes":
            owner = self._owner(self.workers)
            part = run_on_processes(tasks, owner, self.workers, config)
        else:
            part = run_on_mpi(tasks, self._owner, config)
        self.delivered = {i: part.delivered.get(i, []) for i in range(self._size)}
        self._emitted = list(part.emitted)
        return [part.reports.get(i, {}) for i in range(self._size)]

    def _owner(self, workers: int) -> list[int]:
        if self.owner is None:
            return balance([1.0] * self._size, workers)
        if len(self.owner) != self._size or any(not 0 <= pe < workers for pe in self.owner):
            raise ConfigError(f"owner must give a PE in [0, {workers}) for each of the {self._size} tasks")
        return list(self.owner)

    @property
    def emitted(self) -> list[tuple[int, Any]]:
        """(task, record) for every ``emit``, in call order (per PE, then PE order)."""
        return list(self._emitted)
