"""The car wash of the Event-Based Coordination pattern, checked against M/M/c theory.

    python examples/carwash.py                      # sequential
    python examples/carwash.py --mode optimistic --workers 2 --placement processes
    mpiexec -n 2 python examples/carwash.py --mode conservative --placement mpi

The model lives in :mod:`evfabric.sim.models.carwash`; this script runs it and compares the
mean time in system and the mean queue length with the Erlang-C formulas.
"""

from __future__ import annotations

import argparse

from evfabric.sim import run
from evfabric.sim.models import CarWash, mmc_theory

__all__ = ["CarWash", "main", "mmc_theory"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the car wash once and print it next to theory; returns the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--until", type=float, default=20_000.0)
    ap.add_argument("--arrival-mean", type=float, default=1.0)
    ap.add_argument("--wash-mean", type=float, default=1.6)
    ap.add_argument("--machines", type=int, default=2)
    ap.add_argument("--attendant-time", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=1000.0, help="left out of W and Lq")
    ap.add_argument("--mode", default="sequential")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--placement", default="threads")
    a = ap.parse_args(argv)
    model = CarWash(
        arrival_mean=a.arrival_mean, wash_mean=a.wash_mean, machines=a.machines,
        attendant_time=a.attendant_time, seed=a.seed, warmup=min(a.warmup, a.until / 2),
    )
    result = run(model, a.until, a.mode, a.workers, a.placement)
    res = result.results
    print(f"cars departed          {res['departed']}")
    print(f"mean time in system    {res['mean_time_in_system']:.4f}")
    print(f"mean queue length      {res['mean_queue_length']:.4f}")
    if a.attendant_time == 0.0:
        try:
            th = mmc_theory(1.0 / a.arrival_mean, 1.0 / a.wash_mean, a.machines)
            print(f"M/M/{a.machines} theory          W = {th['W']:.4f}, Lq = {th['Lq']:.4f}")
        except ValueError as exc:
            print(f"no steady state: {exc}")
    print(result.stats.summary())
    return res


if __name__ == "__main__":
    main()
