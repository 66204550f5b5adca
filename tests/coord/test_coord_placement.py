"""Placement by weight and group, and the transports' collectives."""

import threading

import pytest

from evfabric.coord import balance, measured_weights
from evfabric.coord.transport import ThreadTransport
from evfabric.core.errors import DeadlockDetected


def test_balance_spreads_equal_weights_evenly():
    owner = balance([1.0] * 10, 4)
    loads = [owner.count(pe) for pe in range(4)]
    assert sorted(loads) == [2, 2, 3, 3]


def test_balance_keeps_groups_together_and_balances_weight():
    weights = [5, 1, 1, 1, 1, 1, 4, 2]
    groups = ["a", "b", "b", "c", "c", "c", "d", "e"]
    owner = balance(weights, 2, groups)
    for g in set(groups):
        assert len({owner[i] for i, gi in enumerate(groups) if gi == g}) == 1
    load = [sum(w for w, pe in zip(weights, owner) if pe == k) for k in range(2)]
    assert max(load) <= 4 / 3 * sum(weights) / 2 + max(weights)
    assert abs(load[0] - load[1]) <= 2


def test_balance_uses_measured_weights():
    counts = [1000, 10, 10, 10, 10, 10]
    owner = balance(measured_weights(counts), 2)
    heavy = owner[0]
    assert all(owner[i] != heavy for i in range(1, 6))
    assert measured_weights([0, 3], floor=1.0) == [1.0, 3.0]


def test_balance_is_deterministic_and_checks_workers():
    w = [3, 1, 4, 1, 5, 9, 2, 6]
    assert balance(w, 3) == balance(w, 3)
    with pytest.raises(ValueError):
        balance(w, 0)


def test_thread_transport_exchange_gather_and_fifo():
    ts = ThreadTransport.group(3)
    out: dict[int, object] = {}

    def body(r):
        t = ts[r]
        rounds = [t.exchange([(r, p, k) for p in range(3)]) for k in range(5)]
        gathered = t.gather(r)
        for p in range(3):
            if p != r:
                for n in range(20):
                    t.send(p, ("seq", n))
        got = [t.recv(5) for _ in range(40)]
        out[r] = (rounds, gathered, got)

    threads = [threading.Thread(target=body, args=(r,)) for r in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    for r in range(3):
        rounds, gathered, got = out[r]
        for k, row in enumerate(rounds):
            assert row == [(p, r, k) for p in range(3)]  # each round's message, never a later one
        assert gathered == ([0, 1, 2] if r == 0 else None)
        for p in range(3):
            if p != r:
                assert [m[1] for src, m in got if src == p] == list(range(20))  # FIFO per pair


def test_collective_wait_times_out_with_who_waits_on_whom():
    ts = ThreadTransport.group(2)
    ts[0].timeout = 0.2
    with pytest.raises(DeadlockDetected, match="0 -> 1"):
        ts[0].exchange([None, None])


def _outside_mpiexec(monkeypatch):
    from evfabric.coord import transport_mpi

    for var in transport_mpi._LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    pytest.importorskip("mpi4py")


def test_mpi_placement_without_mpiexec_is_a_one_line_error_not_one_worker(monkeypatch):
    from evfabric.coord import Runtime, Task
    from evfabric.core.errors import ConfigError
    from evfabric.sim import run
    from evfabric.sim.models import Phold

    _outside_mpiexec(monkeypatch)
    with pytest.raises(ConfigError, match="needs an MPI launch: run 'mpiexec -n N") as info:
        run(Phold(n=4), 1.0, mode="conservative", placement="mpi")
    assert "\n" not in str(info.value)
    rt = Runtime(placement="mpi")
    rt.add(Task())
    with pytest.raises(ConfigError, match="mpiexec"):
        rt.run(5)
