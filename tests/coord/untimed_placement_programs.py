"""Untimed programs shared by test_coord_untimed_placement.py and its MPI script (importable
by spawned processes, so they live in a module rather than in the test file)."""

from __future__ import annotations

import time
from typing import Any

from evfabric.coord import Runtime, Task
from evfabric.core.errors import ReceiveTimeout


class Chatter(Task):
    """Ping-pong with every other task; task 0 first takes task 1's first event out of order.

    Every task pings each other task ``rounds`` times; a ping is answered by a pong carrying
    ``data * 10 + own id``. The log keeps, per sender, what arrived (a FIFO order per sender is
    deterministic whatever the interleaving of senders).
    """

    def __init__(self, size: int, rounds: int) -> None:
        self.size, self.rounds = size, rounds
        self.log: dict[str, list[Any]] = {}

    def init(self) -> None:
        for k in range(self.rounds):
            for dst in range(self.size):
                if dst != self.id:
                    self.send(dst, "ping", k)
        self.first: list[Any] | None = None
        if self.id == 0:  # an explicit receive that skips the other senders' events (FIFO allows it)
            got = self.receive(src=1)
            self.first = [got.kind, got.data]

    def handle(self, kind: str, data: Any) -> None:
        self.log.setdefault(str(self.current.src), []).append([kind, data])
        if kind == "ping":
            self.send(self.current.src, "pong", data * 10 + self.id)

    def finish(self) -> dict[str, Any]:
        return {"log": self.log, "first": self.first}


class Burst(Task):
    """Sends ``n`` numbered events to ``dst`` as fast as it can."""

    def __init__(self, n: int, dst: int) -> None:
        self.n, self.dst = n, dst

    def init(self) -> None:
        for k in range(self.n):
            self.send(self.dst, "v", k)


class Collector(Task):
    def __init__(self, pause: float = 0.3) -> None:
        self.pause, self.got = pause, []

    def init(self) -> None:
        time.sleep(self.pause)  # let events pile up, so the jittery network can reorder them

    def handle(self, kind: str, data: Any) -> None:
        self.got.append([self.current.src, data])

    def finish(self) -> dict[str, Any]:
        return {"got": self.got}


class Opener(Task):
    """Fig. 4.33, task 1 of triple t (ids 3t, 3t+1, 3t+2): open the gate, tell task 2."""

    def init(self) -> None:
        self.send(self.id + 2, "open")
        self.send(self.id + 1, "opened")


class Closer(Task):
    def handle(self, kind: str, data: Any) -> None:
        self.send(self.id + 1, "close")


class Gate(Task):
    def __init__(self) -> None:
        self.log: list[str] = []

    def init(self) -> None:
        time.sleep(0.3)  # both events are in the inbox before the first is taken

    def handle(self, kind: str, data: Any) -> None:
        self.log.append(kind)

    def finish(self) -> dict[str, Any]:
        return {"log": self.log}


class WaitOther(Task):
    """Task i first waits for an event from task i+1 (mod 3): a three-task cycle."""

    def init(self) -> None:
        self.receive(src=(self.id + 1) % 3)
        self.send((self.id + 2) % 3, "token")


class Impatient(Task):
    """Waits 0.2 s for task 1, which is busy for longer: the receive times out here only."""

    def init(self) -> None:
        self.timed_out = False
        if self.id == 0:
            try:
                self.receive(src=1, timeout=0.2)
            except ReceiveTimeout:
                self.timed_out = True
        else:
            time.sleep(1.0)  # busy, not blocked
            self.send(0, "late")

    def handle(self, kind: str, data: Any) -> None:
        self.late = kind

    def finish(self) -> dict[str, Any]:
        return {"timed_out": self.timed_out, "late": getattr(self, "late", None)}


class Broken(Task):
    def init(self) -> None:
        if self.id == 1:
            raise ValueError("broken component")


def build(rt: Runtime, tasks: list[Task]) -> Runtime:
    for t in tasks:
        rt.add(t)
    return rt


def chatter(**kw: Any) -> Runtime:
    return build(Runtime("fifo", **kw), [Chatter(4, 6) for _ in range(4)])


def fifo_burst(ordering: str, **kw: Any) -> Runtime:
    # Senders on PE 0, the collector on PE 1: every event crosses PEs, arrivals are jittered.
    return build(Runtime(ordering, jitter=4, seed=1, owner=[0, 0, 1], **kw), [Burst(300, 2), Burst(300, 2), Collector()])


def gates(ordering: str, triples: int = 16, **kw: Any) -> Runtime:
    # The opener on PE 0; the closer and the gate on PE 1: "open" crosses PEs, "close" is local.
    owner = [0, 1, 1] * triples
    tasks: list[Task] = []
    for _ in range(triples):
        tasks += [Opener(), Closer(), Gate()]
    return build(Runtime(ordering, jitter=2, seed=3, owner=owner, **kw), tasks)


def ring(**kw: Any) -> Runtime:
    return build(Runtime("none", **kw), [WaitOther() for _ in range(3)])


class Token(Task):
    """A token passed ``hops`` times around a ring of tasks; each task counts its visits."""

    def __init__(self, size: int, hops: int) -> None:
        self.size, self.hops, self.visits = size, hops, 0

    def init(self) -> None:
        if self.id == 0:
            self.send(1, "token", 1)

    def handle(self, kind: str, data: Any) -> None:
        self.visits += 1
        if data < self.hops:
            self.send((self.id + 1) % self.size, "token", data + 1)

    def finish(self) -> dict[str, Any]:
        return {"visits": self.visits}


class Patient(Task):
    """Task 0 waits ``timeout`` s for an event from task 1, which is idle (it never sends):
    a wait with a deadline, not a deadlock; the receive raises ReceiveTimeout in task 0."""

    def __init__(self, timeout: float = 0.5) -> None:
        self.timeout = timeout

    def init(self) -> None:
        self.timed_out, self.waited = False, 0.0
        if self.id == 0:
            t0 = time.monotonic()
            try:
                self.receive(src=1, timeout=self.timeout)
            except ReceiveTimeout:
                self.timed_out = True
            self.waited = time.monotonic() - t0

    def finish(self) -> dict[str, Any]:
        return {"timed_out": self.timed_out, "waited": self.waited}


class Client(Task):
    """A retry protocol: send a request, wait ``patience`` s for the reply, send it again."""

    def __init__(self, patience: float = 0.2, tries: int = 6) -> None:
        self.patience, self.tries = patience, tries

    def init(self) -> None:
        self.attempts, self.reply = 0, None
        while self.reply is None and self.attempts < self.tries:
            self.attempts += 1
            self.send(1, "req", self.attempts)
            try:
                self.reply = self.receive(src=1, kind="rep", timeout=self.patience).data
            except ReceiveTimeout:
                continue

    def finish(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "reply": self.reply}


class LossyServer(Task):
    """Loses the first ``lose`` requests (as an unreliable link would), answers the others."""

    def __init__(self, lose: int = 2) -> None:
        self.lose, self.seen = lose, 0

    def handle(self, kind: str, data: Any) -> None:
        self.seen += 1
        if self.seen > self.lose:
            self.send(0, "rep", f"answer to request {data}")

    def finish(self) -> dict[str, Any]:
        return {"seen": self.seen}


class GiveUpThenWait(Task):
    """Task 0 times out once, then waits for task 1 forever; task 1 waits for task 0: once the
    deadline has passed, this is a deadlock (and only then)."""

    def init(self) -> None:
        if self.id == 0:
            try:
                self.receive(src=1, timeout=0.3)
            except ReceiveTimeout:
                self.receive(src=1)
        else:
            self.receive(src=0)


def patient(**kw: Any) -> Runtime:
    return build(Runtime("none", **kw), [Patient(), Patient()])


def retry(**kw: Any) -> Runtime:
    return build(Runtime("fifo", **kw), [Client(), LossyServer()])


def give_up_then_wait(**kw: Any) -> Runtime:
    return build(Runtime("none", **kw), [GiveUpThenWait(), GiveUpThenWait()])
