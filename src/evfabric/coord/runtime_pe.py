"""Untimed tasks spread over processing elements (processes of one node, or MPI ranks).

Each PE runs its tasks as threads (:class:`~evfabric.coord.untimed.Engine`); its main thread
*serves*: it sends the events its tasks addressed to other PEs, one batch per peer per turn,
and puts the batches it receives into its tasks' inboxes. Orderings need nothing more: FIFO
sequence numbers and causal matrix clocks are stamped at the sender and travel with the event,
and each PE's ordering object keeps the state of its own tasks.

**Termination and deadlock** are decided by PE 0, the coordinator, with a counting method in
waves. A wave asks every PE for: *passive* (every task of the PE blocked), *active since the
last wave* (took, sent or received an event, or a receive timed out), and its counts of events
sent to and received from other PEs. The verdict needs a wave in which every PE is passive,
none was active since the previous wave, and the sums of sent and received counts agree. Then,
at the start of that wave, every PE was between two reports without activity, so the counts
held at that instant: nothing was in flight, everyone was blocked, and no one can wake anyone.
The PEs' explicit waits and held-back events of that wave make the verdict (terminated, or the
same :class:`~evfabric.core.errors.DeadlockDetected` report as on threads), which PE 0 sends to
every PE. A task that raises makes its PE tell PE 0, which ends the run everywhere with
:class:`~evfabric.core.errors.WorkerFailed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evfabric.coord.execute import _on_processes, _portable
from evfabric.coord.ordering import Message
from evfabric.coord.task import Task
from evfabric.coord.transport import Transport
from evfabric.coord.untimed import Engine, Held, Wait, decide
from evfabric.core.errors import DeadlockDetected, WorkerFailed

__all__ = ["Coordinator", "PEEngine", "Part", "pe_main", "run_on_mpi", "run_on_processes"]

POLL = 0.001  # seconds a serving PE waits for a peer's message before flushing its batches again
WAVE_PAUSE = 0.005  # between waves while some PE is busy
GRACE = 15.0  # seconds past the time limit a PE waits for the coordinator's verdict

# (ordering, jitter, seed, timeout): what every PE needs besides its tasks.
Config = tuple[str, int, int, "float | None"]
# A PE's answer to a wave: passive, active since the last wave, sent, received, and (only when
# it could be the last wave) its explicit waits and held-back events.
Report = tuple[bool, bool, int, int, "tuple[dict[int, Wait], list[Held]] | None"]


@dataclass
class Part:
    """What PEs bring back: finish reports, emitted records and delivery traces of their tasks."""

    reports: dict[int, dict[str, Any]] = field(default_factory=dict)
    emitted: list[tuple[int, Any]] = field(default_factory=list)
    delivered: dict[int, list[Message]] = field(default_factory=dict)

    @staticmethod
    def merge(parts: list[Part]) -> Part:
        """One part for the whole program (PE order)."""
        out = Part()
        for p in parts:
            out.reports.update(p.reports)
            out.emitted.extend(p.emitted)
            out.delivered.update(p.delivered)
        return out


class PEEngine(Engine):
    """The tasks of one PE; events for tasks elsewhere wait in a per-peer outbox."""

    def __init__(self, tasks: dict[int, Task], size: int, owner: list[int], rank: int, config: Config) -> None:
        ordering, jitter, seed, _ = config
        super().__init__(ordering, jitter, seed + rank)
        self._size, self.owner, self.rank = size, owner, rank
        for i, task in tasks.items():
            self._hold(task, i)
        self._out: dict[int, list[Message]] = {}
        self._sent = self._received = 0
        self._active = True  # since the last wave; a PE starts active

    def _route(self, msg: Message) -> None:
        self._active = True
        pe = self.owner[msg.dst]
        if pe == self.rank:
            self._enqueue(msg)
        else:
            self._out.setdefault(pe, []).append(msg)
            self._sent += 1

    def _activity(self) -> None:
        self._active = True

    def _on_all_blocked(self) -> bool:
        return False  # other PEs may still wake us: the coordinator decides

    def _take_outbox(self) -> dict[int, list[Message]]:
        with self._cond:
            out, self._out = self._out, {}
            return out

    def _arrive(self, msgs: list[Message]) -> None:
        with self._cond:
            for msg in msgs:
                self._enqueue(msg)
            self._received += len(msgs)
            self._active = True

    def report(self) -> Report:
        """This PE's answer to a wave; clears the activity flag."""
        with self._cond:
            passive = self._stuck()  # a receive with a deadline pending is not passive
            active, self._active = self._active, False
            state = self._local_state() if passive and not active else None
            return passive, active, self._sent, self._received, state


class Coordinator:
    """PE 0's side of the waves (see the module docstring)."""

    def __init__(self, engine: PEEngine, transport: Transport) -> None:
        self.engine, self.transport = engine, transport
        self.wave, self.open, self.next_at = 0, False, 0.0
        self.replies: dict[int, Report] = {}

    def reply(self, peer: int, wave: int, report: Report) -> None:
        if wave == self.wave:
            self.replies[peer] = report

    def step(self) -> Any:
        """Start a wave or judge a finished one; the verdict once there is one, else None."""
        size = self.transport.size
        if not self.open:
            if time.monotonic() < self.next_at:
                return None
            self.wave += 1
            self.open = True
            for p in range(1, size):
                self.transport.send(p, ("w", self.wave))
            self.replies = {0: self.engine.report()}
        if len(self.replies) < size:
            return None
        self.open = False
        reports = [self.replies[p] for p in range(size)]
        settled = all(r[0] for r in reports) and sum(r[2] for r in reports) == sum(r[3] for r in reports)
        if settled and not any(r[1] for r in reports):
            waits: dict[int, Wait] = {}
            held: list[Held] = []
            for r in reports:
                assert r[4] is not None
                waits.update(r[4][0])
                held.extend(r[4][1])
            verdict = decide(self.engine._size, waits, held)
            return verdict if verdict == "done" else ("deadlock", str(verdict))
        self.next_at = time.monotonic() + (0.0 if settled else WAVE_PAUSE)  # settled: confirm at once
        return None


def _serve(engine: PEEngine, transport: Transport, errors: dict[int, BaseException], timeout: float | None) -> Any:
    """Move batches between PEs until PE 0 sends the verdict; return it (on PE 0, broadcast it)."""
    coordinator = Coordinator(engine, transport) if transport.rank == 0 else None
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        for pe, msgs in engine._take_outbox().items():
            transport.send(pe, ("b", msgs))
        verdict = None
        if errors and not told:  # a task raised: the run ends everywhere
            i = min(errors)
            failure = ("failed", f"task {i} failed: {errors[i]!r}")
            told = True
            if coordinator is None:
                transport.send(0, ("f", failure))
            else:
                verdict = failure
        got = transport.recv(POLL) if verdict is None else None
        if got is not None:
            peer, msg = got
            tag = msg[0]
            if tag == "b":
                engine._arrive(msg[1])
            elif tag == "w":
                transport.send(0, ("s", msg[1], engine.report()))
            elif tag == "s" and coordinator is not None:
                coordinator.reply(peer, msg[1], msg[2])
            elif tag == "f":
                verdict = msg[1]
            elif tag == "e":
                return msg[1]
        if coordinator is not None:
            if verdict is None and deadline is not None and time.monotonic() > deadline:
                with engine._cond:
                    verdict = ("failed", f"tasks still running after {timeout}s; blocked on PE 0: {engine._waiting()}")
            verdict = verdict if verdict is not None else coordinator.step()
            if verdict is not None:
                for p in range(1, transport.size):
                    transport.send(p, ("e", verdict))
                return verdict
        elif deadline is not None and time.monotonic() > deadline + GRACE:
            return ("failed", f"PE {transport.rank} got no verdict from PE 0 within {timeout}s + {GRACE}s")


def pe_main(tasks: dict[int, Task], size: int, owner: list[int], transport: Transport, config: Config) -> Part:
    """Run this PE's ``tasks`` (of ``size`` in the program) until PE 0's verdict.

    Returns the PE's :class:`Part` if the program terminated; raises the run's
    :class:`DeadlockDetected` or :class:`WorkerFailed` on every PE otherwise.
    """
    engine = PEEngine(tasks, size, owner, transport.rank, config)
    reports: dict[int, dict[str, Any]] = {}
    errors: dict[int, BaseException] = {}
    transport.timeout = None if config[3] is None else config[3] + GRACE  # for the collectives
    transport.exchange([None] * transport.size)  # start together: spawn skew is not part of the program
    threads = engine._start(reports, errors)
    verdict = _serve(engine, transport, errors, config[3])
    outcome: str | BaseException = "done"
    if verdict != "done":
        outcome = DeadlockDetected(verdict[1]) if verdict[0] == "deadlock" else WorkerFailed(verdict[1])
    with engine._cond:
        engine._outcome = outcome
        engine._cond.notify_all()
    for th in threads:
        th.join(5.0)  # tasks unwind at their next send or take; a task stuck in its own code is left behind
    if isinstance(outcome, BaseException):
        raise outcome
    return Part(reports, engine._emitted, engine.delivered)


def _process_entry(rank: int, inboxes: list[Any], results: Any, args: tuple[Any, ...]) -> None:
    """A PE process of an untimed run (see :func:`run_on_processes`)."""
    from evfabric.coord.transport_mp import ProcessTransport

    tasks, owner, config = args
    transport = ProcessTransport(rank, inboxes)
    mine = {i: t for i, t in enumerate(tasks) if owner[i] == rank}
    try:
        results.put((rank, pe_main(mine, len(tasks), owner, transport, config), None))
        transport.close()
    except BaseException as exc:
        results.put((rank, None, _portable(exc)))
        for q in inboxes:  # after a failure, batches may be left unread: do not wait to flush them
            q.cancel_join_thread()


def run_on_processes(tasks: list[Task], owner: list[int], workers: int, config: Config) -> Part:
    """Run ``tasks`` (picklable) on ``workers`` spawned processes, task ``i`` on PE ``owner[i]``."""
    timeout = config[3]
    deadline = None if timeout is None else time.monotonic() + timeout + 2 * GRACE
    return Part.merge(_on_processes(workers, (tasks, owner, config), deadline, entry=_process_entry))


def run_on_mpi(tasks: list[Task], place: Callable[[int], list[int]], config: Config) -> Part:
    """This MPI rank's share of ``tasks`` (``place(world_size)`` gives the owners); every rank
    returns the whole program's :class:`Part` or raises the same error."""
    from evfabric.coord.transport_mpi import MpiTransport, require_mpi

    require_mpi()
    transport = MpiTransport()
    owner = place(transport.size)
    mine = {i: t for i, t in enumerate(tasks) if owner[i] == transport.rank}
    part = pe_main(mine, len(tasks), owner, transport, config)
    gathered = transport.gather(part)
    if transport.rank == 0:
        assert gathered is not None
        part = Part.merge(gathered)
        for p in range(1, transport.size):
            transport.send(p, part)
    else:
        got = transport.recv(transport.timeout)
        if got is None:
            raise WorkerFailed(f"PE {transport.rank} never received the results from PE 0")
        part = got[1]
    transport.close()
    return part

