"""Untimed tasks on threads: ordering modes, look-ahead receive, deadlock and timeouts."""

import time

import pytest

from evfabric.coord import Facade, Runtime, Task
from evfabric.coord.runtime import find_cycles
from evfabric.core.errors import ConfigError, DeadlockDetected, ReceiveTimeout, WorkerFailed


class Sender(Task):
    def __init__(self, n, dst):
        self.n, self.dst = n, dst

    def init(self):
        for k in range(self.n):
            self.send(self.dst, "v", k)


class Collector(Task):
    def __init__(self):
        self.got = []

    def init(self):
        time.sleep(0.2)  # let events pile up in the inbox, so the network can reorder them

    def handle(self, kind, data):
        self.got.append((self.current.src, data))

    def finish(self):
        return {"got": self.got}


def fifo_run(ordering, seed):
    rt = Runtime(ordering, jitter=4, seed=seed)
    rt.add(Sender(30, 2))
    rt.add(Sender(30, 2))
    rt.add(Collector())
    return rt.run(10)[2]["got"]


@pytest.mark.parametrize("ordering", ["fifo", "causal"])
def test_fifo_and_causal_restore_per_sender_order_over_a_reordering_network(ordering):
    for seed in range(3):
        got = fifo_run(ordering, seed)
        assert len(got) == 60
        for src in (0, 1):
            assert [d for s, d in got if s == src] == list(range(30))


def test_without_ordering_the_network_reorders():
    got = fifo_run("none", 0)
    assert sorted(got) == sorted((s, k) for s in (0, 1) for k in range(30))
    assert any([d for s, d in got if s == src] != list(range(30)) for src in (0, 1))


class Opener(Task):
    """Task 1 of the pattern's Fig. 4.33: tells the gate to open, and tells task 2 about it."""

    def init(self):
        self.send(2, "open")
        self.send(1, "opened")


class Closer(Task):
    """Task 2: on hearing about the opening, closes the gate."""

    def handle(self, kind, data):
        self.send(2, "close")


class Gate(Task):
    def __init__(self):
        self.log = []

    def init(self):
        time.sleep(0.05)  # both events arrive before the first is taken: reordering is possible

    def handle(self, kind, data):
        self.log.append(kind)

    def finish(self):
        return {"log": self.log}


def gate_logs(ordering, seeds=range(12)):
    logs = []
    for seed in seeds:
        rt = Runtime(ordering, jitter=2, seed=seed)
        for t in (Opener(), Closer(), Gate()):
            rt.add(t)
        logs.append(rt.run(10)[2]["log"])
    return logs


def test_causal_order_delivers_open_before_close():
    assert all(log == ["open", "close"] for log in gate_logs("causal"))


def test_fifo_alone_does_not_give_causal_order():
    # open (from task 0) and close (from task 1) come from different senders: FIFO cannot order them.
    assert ["close", "open"] in gate_logs("fifo")


def test_vector_clocks_stamp_happened_before():
    rt = Runtime("causal", jitter=2, seed=1)
    for t in (Opener(), Closer(), Gate()):
        rt.add(t)
    rt.run(10)
    first, second = rt.delivered[2]
    assert first.vc < second.vc  # open happened before close


class Ping(Task):
    """Waits for a specific reply with an explicit receive, taking it out of order."""

    def init(self):
        if self.id == 0:
            self.send(1, "noise")
            self.send(1, "ping")
            reply = self.receive(src=1, kind="pong")
            self.answer = reply.data

    def handle(self, kind, data):
        if kind == "ping":
            self.send(0, "chatter")
            self.send(0, "pong", 42)

    def finish(self):
        return {"answer": getattr(self, "answer", None)}


def test_explicit_receive_looks_ahead_past_other_events():
    rt = Runtime("none")
    rt.add(Ping())
    rt.add(Ping())
    assert rt.run(10)[0]["answer"] == 42
    # The "chatter" event skipped by the receive was handled afterwards, not lost.
    assert [m.kind for m in rt.delivered[0]] == ["pong", "chatter"]


def test_fifo_forbids_taking_a_later_event_first_and_says_so():
    rt = Runtime("fifo")
    rt.add(Ping())
    rt.add(Ping())
    with pytest.raises(DeadlockDetected, match="waits for message #0 from task 1"):
        rt.run(10)


class WaitOther(Task):
    def init(self):
        self.receive(src=(self.id + 1) % 3)
        self.send((self.id + 2) % 3, "token")


def test_a_deadlock_is_reported_with_its_wait_for_cycle():
    rt = Runtime("none")
    for _ in range(3):
        rt.add(WaitOther())
    with pytest.raises(DeadlockDetected) as info:
        rt.run(10)
    text = str(info.value)
    for i in range(3):
        assert f"task {i} waits for an event from task {(i + 1) % 3}" in text
    assert "0 -> 1 -> 2 -> 0" in text


class Gap(Task):
    """Sends #1 but 'loses' #0 by sending it to itself: the FIFO receiver can never proceed."""

    def init(self):
        if self.id == 0:
            self.send(1, "a")
            self.send(1, "b")


def test_held_back_events_are_reported_when_ordering_cannot_progress():
    rt = Runtime("fifo")
    rt.add(Gap())
    rt.add(Gap())
    rt._inbox  # noqa: B018 - created
    # Drop message #0 from the network to create an unfillable FIFO gap.
    original = rt._send

    def lossy(src, dst, kind, data=None, delay=0.0):
        original(src, dst, kind, data, delay)
        if kind == "a":
            rt._inbox[dst].pop()

    rt._send = lossy
    with pytest.raises(DeadlockDetected, match="waits for message #0 from task 0"):
        rt.run(10)


def test_receive_timeout_is_the_middle_ground():
    class Impatient(Task):
        def init(self):
            try:
                self.receive(src=1, timeout=0.2)
            except ReceiveTimeout:
                self.timed_out = True

        def finish(self):
            return {"timed_out": getattr(self, "timed_out", False)}

    class Busy(Task):
        def init(self):
            import time

            time.sleep(0.6)  # busy, not blocked: no deadlock, but the receive gives up

    rt = Runtime()
    rt.add(Impatient())
    rt.add(Busy())
    assert rt.run(10)[0]["timed_out"] is True


def test_quiescent_program_terminates_and_reports():
    rt = Runtime()
    rt.add(Sender(5, 1))
    rt.add(Collector())
    reports = rt.run(10)
    assert [d for _, d in reports[1]["got"]] == [0, 1, 2, 3, 4]


def test_task_errors_fail_the_run():
    class Broken(Task):
        def init(self):
            raise ValueError("broken component")

    rt = Runtime()
    rt.add(Broken())
    with pytest.raises(WorkerFailed, match="broken component"):
        rt.run(10)


def test_unknown_ordering_is_a_config_error():
    with pytest.raises(ConfigError):
        Runtime("total")


def test_facade_wraps_a_sequential_component():
    class Accumulator:  # knows nothing about events
        def __init__(self):
            self.total = 0

        def add(self, x):
            self.total += x
            return self.total

    class Source(Task):
        def init(self):
            for x in (1, 2, 3):
                self.send(1, "add", x)

    rt = Runtime("fifo")
    rt.add(Source())
    rt.add(Facade(Accumulator(), routes={"add": [(2, "v")]}, report=lambda c: {"total": c.total}))
    rt.add(Collector())
    reports = rt.run(10)
    assert reports[1] == {"total": 6}
    assert [d for _, d in reports[2]["got"]] == [1, 3, 6]


def test_find_cycles():
    assert find_cycles({0: {1}, 1: {2}, 2: {0}, 3: {3}}) == [[0, 1, 2], [3]]
    assert find_cycles({0: {1}, 1: set()}) == []


def test_an_uncaught_receive_timeout_fails_the_run_naming_it():
    class Waiter(Task):
        def init(self):
            self.receive(src=1, timeout=0.1)  # task 1 is idle: the timeout fires, uncaught

    rt = Runtime()
    rt.add(Waiter())
    rt.add(Task())
    with pytest.raises(WorkerFailed, match="task 0 failed: ReceiveTimeout"):
        rt.run(10)
