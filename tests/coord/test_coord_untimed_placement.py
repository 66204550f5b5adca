"""Untimed programs on processes and MPI ranks: same results as on threads, FIFO and causal
order across PEs, exact termination, deadlock reports, receive timeouts and task failures."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import untimed_placement_programs as P

from evfabric.coord import Runtime
from evfabric.core.errors import ConfigError, DeadlockDetected, WorkerFailed

PROCS = {"placement": "processes", "workers": 2}


def in_order(got, senders=(0, 1), n=300):
    return all([d for s, d in got if s == src] == list(range(n)) for src in senders)


def test_chatter_gives_the_same_logs_on_threads_and_processes():
    on_threads = P.chatter().run(20)
    on_processes = P.chatter(**PROCS).run(20)
    assert on_processes == on_threads
    assert on_threads[0]["first"] == ["ping", 0]
    # 72 pings and their pongs, less the ping task 0 took with receive() (not handled, so never
    # answered): every event arrived once, none was lost or duplicated between PEs.
    assert sum(len(v) for r in on_threads for v in r["log"].values()) == 4 * 3 * 6 * 2 - 2


def test_fifo_per_sender_holds_across_pes():
    got = P.fifo_burst("fifo", **PROCS).run(20)[2]["got"]
    assert len(got) == 600 and in_order(got)
    # The same jittery network without an ordering does reorder: the check above can fail.
    assert not in_order(P.fifo_burst("none", **PROCS).run(20)[2]["got"])


def test_causal_order_across_pes():
    logs = [r["log"] for r in P.gates("causal", **PROCS).run(20)[2::3]]
    assert logs == [["open", "close"]] * 16
    # FIFO alone cannot order "open" (from the opener, on the other PE) before "close".
    assert ["close", "open"] in [r["log"] for r in P.gates("fifo", **PROCS).run(20)[2::3]]


def test_vector_clocks_travel_between_pes():
    rt = P.gates("causal", triples=1, **PROCS)
    rt.run(20)
    first, second = rt.delivered[2]
    assert (first.kind, second.kind) == ("open", "close")
    assert first.vc < second.vc  # open happened before close, across PEs


def test_termination_waits_for_the_event_in_flight():
    # Every hop crosses PEs (tasks alternate between them), so both PEs are often idle with
    # the token in flight: declaring the end then would lose visits.
    rt = P.build(Runtime(owner=[0, 1, 0, 1], **PROCS), [P.Token(4, 300) for _ in range(4)])
    assert [r["visits"] for r in rt.run(20)] == [75, 75, 75, 75]


def test_a_deadlock_across_processes_is_reported_not_hung():
    t0 = time.monotonic()
    with pytest.raises(DeadlockDetected) as info:
        P.ring(**PROCS).run(20)
    assert time.monotonic() - t0 < 15
    text = str(info.value)
    for i in range(3):
        assert f"task {i} waits for an event from task {(i + 1) % 3}" in text
    assert "cycles: 0 -> 1 -> 2 -> 0" in text


def test_receive_timeout_on_one_pe_while_another_is_busy():
    # PE 0 is passive long before PE 1 sends: the run must neither end early nor hang.
    rt = P.build(Runtime(owner=[0, 1], **PROCS), [P.Impatient(), P.Impatient()])
    reports = rt.run(20)
    assert reports[0] == {"timed_out": True, "late": "late"}


PLACES = {"threads": {}, "processes": {**PROCS, "owner": [0, 1]}}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_receive_with_a_timeout_is_not_a_deadlock_before_its_deadline(place):
    # Task 0: receive(src=1, timeout=0.5); task 1 idle. Not a deadlock: the timeout fires.
    t0 = time.monotonic()
    reports = P.patient(**PLACES[place]).run(20)
    assert reports[0]["timed_out"] is True
    assert 0.5 <= reports[0]["waited"] < 5.0
    assert time.monotonic() - t0 >= 0.5


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_retry_protocol_gets_its_answer_after_lost_requests(place):
    reports = P.retry(**PLACES[place]).run(20)
    assert reports[0] == {"attempts": 3, "reply": "answer to request 3"}
    assert reports[1] == {"seen": 3}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_deadlock_is_reported_once_the_deadline_has_passed(place):
    t0 = time.monotonic()
    with pytest.raises(DeadlockDetected) as info:
        P.give_up_then_wait(**PLACES[place]).run(20)
    assert time.monotonic() - t0 >= 0.3  # not before task 0's deadline
    assert "cycles: 0 -> 1 -> 0" in str(info.value)


def test_a_failing_task_fails_the_run_on_every_pe():
    rt = P.build(Runtime(**PROCS), [P.Broken(), P.Broken(), P.Broken()])
    with pytest.raises(WorkerFailed, match="task 1 failed: ValueError\\('broken component'\\)"):
        rt.run(20)


def test_bad_placements_are_config_errors():
    with pytest.raises(ConfigError):
        Runtime(placement="fabric")
    rt = P.build(Runtime(owner=[0, 2], **PROCS), [P.Broken(), P.Broken()])
    with pytest.raises(ConfigError):
        rt.run(20)


@pytest.fixture(scope="module")
def mpi_lines():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH (install the mpi extra: mpi4py and the mpich wheel)")
    script = Path(__file__).with_name("mpi_untimed_placement.py")
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, str(script)],
        capture_output=True, text=True, timeout=40, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["rank"] for r in ranks] == [0, 1]
    return ranks


@pytest.mark.mpi
def test_mpi_chatter_matches_threads(mpi_lines):
    expected = json.loads(json.dumps(P.chatter().run(20)))
    for got in mpi_lines:
        assert got["chatter"] == expected
        assert got["impatient"][0] == {"timed_out": True, "late": "late"}


@pytest.mark.mpi
def test_mpi_fifo_and_causal_order(mpi_lines):
    for got in mpi_lines:
        assert len(got["fifo"]) == 600 and in_order(got["fifo"])
        assert got["gates"] == [["open", "close"]] * 16


@pytest.mark.mpi
def test_mpi_deadlock_is_reported_on_every_rank(mpi_lines):
    for got in mpi_lines:
        assert got["deadlock"] is not None
        assert "task 2 waits for an event from task 0" in got["deadlock"]
        assert "cycles: 0 -> 1 -> 2 -> 0" in got["deadlock"]


@pytest.mark.mpi
def test_mpi_receive_timeouts_and_retries(mpi_lines):
    for got in mpi_lines:
        assert got["patient"]["timed_out"] is True and got["patient"]["waited"] >= 0.5
        assert got["retry"] == [{"attempts": 3, "reply": "answer to request 3"}, {"seen": 3}]
        assert "cycles: 0 -> 1 -> 0" in got["give_up"]
