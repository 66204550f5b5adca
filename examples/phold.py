"""PHOLD, the synthetic PDES benchmark, in any mode.

    python examples/phold.py --n 1024 --until 20 --mode optimistic --workers 2 --placement processes

The model lives in :mod:`evfabric.sim.models.phold`; ``evfabric bench phold`` measures it.
"""

from __future__ import annotations

import argparse

from evfabric.sim import run
from evfabric.sim.models import Phold

__all__ = ["Phold", "main"]


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run PHOLD once; print its digest and statistics (one CSV row with ``--csv``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--start-events", type=int, default=16)
    ap.add_argument("--remote", type=float, default=0.1)
    ap.add_argument("--lookahead", type=float, default=0.1)
    ap.add_argument("--until", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", default="sequential")
    ap.add_argument("--sync", default="windows")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--placement", default="threads")
    ap.add_argument("--csv", action="store_true")
    a = ap.parse_args(argv)
    model = Phold(n=a.n, start_events=a.start_events, remote=a.remote, lookahead=a.lookahead, seed=a.seed)
    result = run(model, a.until, a.mode, a.workers, a.placement, sync=a.sync)
    if a.csv:
        print(result.stats.csv_header())
        print(result.stats.csv_row())
    else:
        print(result.results)
        print(result.stats.summary())
    return result.results


if __name__ == "__main__":
    main()
