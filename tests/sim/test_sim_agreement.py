"""Every mode, worker count and placement commits exactly the sequential results."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evfabric.sim import run
from evfabric.sim.models import CarWash, Epidemic, Phold

MODELS = {
    "phold": (lambda: Phold(n=24, seed=7), 30.0),
    "carwash": (lambda: CarWash(seed=7, attendant_time=0.05), 300.0),
    "epidemic": (lambda: Epidemic(people=400, seed=7), 40.0),
}
RUNS = [("conservative", {"sync": "windows"}), ("conservative", {"sync": "null"}), ("optimistic", {"batch": 64})]
_baseline: dict[str, object] = {}


def baseline(name):
    if name not in _baseline:
        make, until = MODELS[name]
        _baseline[name] = run(make(), until)
    return _baseline[name]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("mode", "kw"), RUNS, ids=["windows", "null", "optimistic"])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_threads_agree_with_sequential(name, mode, kw, workers):
    make, until = MODELS[name]
    seq = baseline(name)
    got = run(make(), until, mode=mode, workers=workers, **kw)
    assert got.results == seq.results
    assert got.outputs == seq.outputs
    assert got.stats.committed == seq.stats.committed
    assert got.stats.processed == got.stats.committed + got.stats.rolled_back


def test_sequential_runs_are_reproducible_and_seed_dependent():
    a = run(Phold(n=16, seed=3), 20.0).results
    assert a == run(Phold(n=16, seed=3), 20.0).results
    assert a["digest"] != run(Phold(n=16, seed=4), 20.0).results["digest"]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "kw"), RUNS, ids=["windows", "null", "optimistic"])
def test_processes_agree_with_sequential(mode, kw):
    make, until = MODELS["phold"]
    got = run(make(), until, mode=mode, workers=2, placement="processes", **kw)
    assert got.stats.placement == "processes" and got.stats.workers == 2
    assert got.results == baseline("phold").results
    assert got.stats.remote > 0


@pytest.mark.slow
def test_four_processes_agree_on_the_car_wash():
    make, until = MODELS["carwash"]
    got = run(make(), until, mode="optimistic", workers=4, placement="processes", batch=32)
    assert got.results == baseline("carwash").results
    assert got.outputs == baseline("carwash").outputs


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 4])
def test_mpi_ranks_agree_with_sequential(ranks):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH (install the mpi extra: mpi4py and the mpich wheel)")
    script = Path(__file__).with_name("mpi_agreement.py")
    proc = subprocess.run(
        [mpiexec, "-n", str(ranks), sys.executable, str(script)],
        capture_output=True, text=True, timeout=100, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(got) == len(MODELS) * len(RUNS)
    for key, item in got.items():
        name = key.split("/")[0]
        seq = baseline(name)
        assert item["workers"] == ranks, key
        assert item["results"] == json.loads(json.dumps(seq.results, default=str)), key
        assert item["outputs"] == len(seq.outputs), key
        assert item["committed"] == seq.stats.committed, key
