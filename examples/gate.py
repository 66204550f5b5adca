"""The pattern's Fig. 4.33 (open the gate, then close it) as untimed tasks, in any placement.

    python examples/gate.py --ordering causal --placement processes
    mpiexec -n 2 python examples/gate.py --ordering causal --placement mpi
    python examples/gate.py --deadlock --placement processes     # a reported wait-for cycle

The opener runs on PE 0, the closer and the gate on PE 1 (with processes or MPI), and the
network reorders arrivals (``--jitter``): with ``causal`` the gate always sees open, then close;
with ``fifo`` it sometimes does not.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from evfabric.coord import Runtime, Task
from evfabric.core.errors import DeadlockDetected

__all__ = ["Closer", "Gate", "Opener", "main"]


class Opener(Task):
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
        time.sleep(0.2)  # let both events reach the inbox, so the network can reorder them

    def handle(self, kind: str, data: Any) -> None:
        self.log.append(kind)

    def finish(self) -> dict[str, Any]:
        return {"log": self.log}


class WaitNext(Task):
    """Waits for the next task before sending to the previous one: three of them deadlock."""

    def init(self) -> None:
        self.receive(src=(self.id + 1) % 3)
        self.send((self.id + 2) % 3, "token")


def main(argv: list[str] | None = None) -> list[list[str]]:
    """Run ``--triples`` gates; print and return each gate's log (or the deadlock report)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ordering", default="causal", choices=["none", "fifo", "causal"])
    ap.add_argument("--placement", default="threads", choices=["threads", "processes", "mpi"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--triples", type=int, default=8)
    ap.add_argument("--jitter", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--deadlock", action="store_true", help="run three tasks that wait on each other instead")
    args = ap.parse_args(argv)
    if args.deadlock:
        rt = Runtime(placement=args.placement, workers=args.workers)
        for _ in range(3):
            rt.add(WaitNext())
        try:
            rt.run(30)
        except DeadlockDetected as exc:
            print(exc)
        return []
    owner = [0, 1, 1] * args.triples if args.placement != "threads" else None
    rt = Runtime(args.ordering, jitter=args.jitter, seed=args.seed, placement=args.placement,
                 workers=args.workers, owner=owner)
    for _ in range(args.triples):
        for task in (Opener(), Closer(), Gate()):
            rt.add(task)
    logs = [r["log"] for r in rt.run(30)[2::3]]
    print("\n".join(" -> ".join(log) for log in logs))
    return logs


if __name__ == "__main__":
    main()
