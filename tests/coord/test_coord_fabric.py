"""Timed programs whose PEs meet through a real broker (loosely coupled, across sites)."""

import threading
import time

import pytest

import evfabric
from evfabric.coord.transport_fabric import FabricTransport
from evfabric.sim import run
from evfabric.sim.models import CarWash, Phold

pytestmark = pytest.mark.broker


def _participants(url, model, until, size, **kw):
    run_id = f"t{int(time.time() * 1000) % 10_000_000}{id(model) % 1000}"
    results, errors = {}, {}

    def body(rank):
        try:
            with evfabric.connect(url, source=f"pe{rank}") as client:
                transport = FabricTransport(client, run_id, rank, size)
                results[rank] = run(model, until, placement="fabric", transport=transport, timeout=20, **kw)
        except BaseException as exc:
            errors[rank] = exc

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return [results[r] for r in range(size)]


@pytest.mark.parametrize(("mode", "kw"), [("conservative", {"sync": "null"}), ("optimistic", {"batch": 64})])
def test_phold_over_the_fabric_agrees_with_sequential(broker_session, mode, kw):
    model = Phold(n=16, seed=3)
    seq = run(model, 10.0)
    got = _participants(broker_session.url, model, 10.0, 2, mode=mode, **kw)
    for res in got:  # every participant returns the same merged outcome
        assert res.stats.placement == "fabric" and res.stats.workers == 2
        assert res.results == seq.results
        assert res.stats.remote > 0


def test_car_wash_over_the_fabric(broker_session):
    model = CarWash(seed=5)
    seq = run(model, 200.0)
    got = _participants(broker_session.url, model, 200.0, 2, mode="conservative")
    assert got[0].results == seq.results and got[0].outputs == seq.outputs


def test_two_sites_run_the_command_line_over_the_fabric(broker_session):
    import json
    import subprocess
    import sys

    run_id = f"cli{int(time.time() * 1000) % 10_000_000}"
    cmd = [sys.executable, "-m", "evfabric.sim", "phold", "--until", "8", "-p", "n=12", "--mode", "conservative",
           "--sync", "null", "--placement", "fabric", "--fabric", broker_session.url, "--run", run_id, "--size", "2", "--json"]
    procs = [subprocess.Popen([*cmd, "--rank", str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    got = json.loads(outs[0][0])
    assert outs[1][0].strip() == ""  # only PE 0 prints
    assert got["stats"]["placement"] == "fabric" and got["stats"]["workers"] == 2
    assert got["results"] == run(Phold(n=12), 8.0).results
