"""Workers: each way of emitting task events, the snapshot, real subprocess tasks."""

import asyncio
import sys

import pytest

from evfabric.htc import (
    DONE,
    FAILED,
    LocalHub,
    SimulatedRunner,
    SubprocessRunner,
    Worker,
    WorkerConfig,
    plan_assignments,
)
from evfabric.htc.model import Assignment


def _run_worker(cfg: WorkerConfig, tasks: int = 30, per_assignment: int = 10, runner=None):
    async def main():
        fabric = LocalHub()
        got: list[dict] = []
        await fabric.link("c").subscribe("htc.j.up.?", lambda topic, body: got.append(body))
        worker = Worker("w0", "j", fabric.link("w0"), runner or SimulatedRunner(0.002, fail_rate=0.2, seed=5), cfg)
        await worker.start()
        reply = await fabric.link("c").request(
            "htc.j.ctl.w0", {"op": "assign", "a": [a.as_body() for a in plan_assignments(tasks, ["w0"], per_assignment)["w0"]]}, 1.0)
        assert reply == {"ok": True, "tasks": tasks}
        for _ in range(500):
            if worker.idle:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        snapshot = await fabric.link("c").request("htc.j.ctl.w0", {"op": "status"}, 1.0)
        await worker.stop()
        await fabric.service.drain()
        fabric.close()
        return [b for b in got if b["k"] == "task"], snapshot, worker

    return asyncio.run(main())


def _changes(messages):
    return sum(len(m.get(k, ())) for m in messages for k in ("r", "d", "f"))


def test_each_sends_one_message_per_change():
    msgs, _, _ = _run_worker(WorkerConfig(emit="each", heartbeat=0, metrics_every=0))
    assert len(msgs) == 60 and _changes(msgs) == 60  # 30 starts + 30 ends
    assert [m["s"] for m in msgs] == list(range(1, 61))


def test_count_batches_by_count_and_flushes_when_idle():
    msgs, _, _ = _run_worker(WorkerConfig(emit="count", count=7, heartbeat=0, metrics_every=0))
    assert _changes(msgs) == 60
    assert all(_changes([m]) <= 7 for m in msgs) and len(msgs) >= 60 // 7


def test_interval_batches_by_time():
    msgs, _, _ = _run_worker(WorkerConfig(emit="interval", interval=0.02, heartbeat=0, metrics_every=0), tasks=60)
    assert _changes(msgs) == 120 and 1 < len(msgs) < 120


def test_assignment_sends_one_message_per_finished_assignment():
    msgs, _, w = _run_worker(WorkerConfig(emit="assignment", heartbeat=0, metrics_every=0))
    assert sorted(m["a"] for m in msgs) == [0, 1, 2]
    assert all("r" not in m for m in msgs)  # starts are not reported
    finished = {t for m in msgs for t in m["d"] + m["f"]}
    assert finished == set(range(30))
    failed = {t for m in msgs for t in m["f"]}
    assert failed == {t for t in range(30) if w.states[w.position(t)] == FAILED} and failed  # 20% fail


def test_none_sends_nothing_and_snapshot_has_every_state():
    msgs, snap, w = _run_worker(WorkerConfig(emit="none"))
    assert msgs == []
    assert snap["w"] == "w0" and snap["s"] == 0 and len(snap["st"]) == 30
    assert set(snap["st"]) <= {DONE, FAILED} and bytes(w.states) == snap["st"]
    assert set(snap["ms"]) == {"load", "mem", "temp"}


def test_subprocess_runner_runs_real_commands():
    script = "import sys; sys.exit(int(sys.argv[1]) % 3 == 0)"  # tasks 0, 3, 6 fail
    runner = SubprocessRunner([sys.executable, "-c", script, "{task}"])
    _, _, w = _run_worker(WorkerConfig(emit="each", heartbeat=0, metrics_every=0), tasks=8,
                          per_assignment=4, runner=runner)
    assert [t for t in range(8) if w.states[w.position(t)] == FAILED] == [0, 3, 6]


def test_assignment_wire_form_round_trips():
    a = Assignment(3, (7, 8, 9))
    assert Assignment.from_body(a.as_body()) == a


def test_unknown_emit_mode_is_refused():
    from evfabric.core.errors import ConfigError

    with pytest.raises(ConfigError):
        WorkerConfig(emit="sometimes")
