"""Run by tests under ``mpiexec -n N``: every mode on MPI ranks; rank 0 prints one JSON line."""

import json
import sys

from evfabric.sim import run
from evfabric.sim.models import CarWash, Epidemic, Phold

CASES = [
    ("phold", lambda: Phold(n=24, seed=7), 30.0),
    ("carwash", lambda: CarWash(seed=7, attendant_time=0.05), 300.0),
    ("epidemic", lambda: Epidemic(people=400, seed=7), 40.0),
]
RUNS = [("conservative", {"sync": "windows"}), ("conservative", {"sync": "null"}), ("optimistic", {"batch": 64})]

if __name__ == "__main__":
    out = {}
    for name, make, until in CASES:
        for mode, kw in RUNS:
            r = run(make(), until, mode=mode, placement="mpi", timeout=30, **kw)
            out[f"{name}/{mode}/{kw}"] = {"results": r.results, "outputs": len(r.outputs), "workers": r.stats.workers,
                                           "committed": r.stats.committed, "rolled_back": r.stats.rolled_back}
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_rank() == 0:
        print(json.dumps(out, default=str))
    sys.stdout.flush()
