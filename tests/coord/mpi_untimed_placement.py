"""Run by test_coord_untimed_placement.py under ``mpiexec -n 2``: untimed programs on MPI
ranks; rank 0 prints one JSON line, the list of what every rank got (they must agree)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import untimed_placement_programs as P

from evfabric.core.errors import DeadlockDetected

if __name__ == "__main__":
    kw = {"placement": "mpi"}
    out = {
        "chatter": P.chatter(**kw).run(20),
        "fifo": P.fifo_burst("fifo", **kw).run(20)[2]["got"],
        "gates": [r["log"] for r in P.gates("causal", **kw).run(20)[2::3]],
        "impatient": P.build(P.Runtime(owner=[0, 1], **kw), [P.Impatient(), P.Impatient()]).run(20),
    }
    out["patient"] = P.patient(**kw).run(20)[0]
    out["retry"] = P.retry(**kw).run(20)
    try:
        P.give_up_then_wait(**kw).run(20)
        out["give_up"] = "no deadlock"
    except DeadlockDetected as exc:
        out["give_up"] = str(exc)
    try:
        P.ring(**kw).run(20)
        out["deadlock"] = None
    except DeadlockDetected as exc:
        out["deadlock"] = str(exc)
    from mpi4py import MPI

    out["rank"] = MPI.COMM_WORLD.Get_rank()
    everyone = MPI.COMM_WORLD.gather(out)  # one line from rank 0: ranks' prints may interleave
    if everyone is not None:
        print(json.dumps(everyone))
    sys.stdout.flush()
