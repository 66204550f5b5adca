"""PHOLD: our engines against a bare heapq loop and SimPy, and against themselves in parallel.

Figures (each a median of several repetitions, its peer measured in the same run):

* ``sequential``          our sequential engine, events/s; peer: a bare ``heapq`` PHOLD loop
* ``sequential_vs_simpy`` the same figure; peer: SimPy, callback style
* ``conservative_2w``     conservative (synchronous windows), 2 worker processes; peer: our sequential
* ``conservative_null_2w`` conservative with null messages, 2 worker processes; peer: our sequential
* ``optimistic_2w``       optimistic (Time Warp), 2 worker processes; peer: our sequential
* ``optimistic_efficiency`` 1 - rolled_back/committed of that run; peer: no rollback at all (1.0)
* ``optimistic_worst_efficiency`` the least efficiency over the heavy-rollback configurations
  (PHOLD with 64 LPs, 90 % remote, lookahead 0.001; the car wash with its facility split over
  the two workers), adaptive throttling on; peer: no rollback (1.0); the notes give each
  configuration's efficiency with throttling off too

The three loops run the same model (N LPs, E start events each, remote fraction R, lookahead L,
exponential delays of mean 1) to the same end time. Parallel rates are committed events over
the run's wall time from the workers' common start (process spawn and imports excluded; they are
reported in the notes); each parallel run's peer is a sequential run made just before it.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from heapq import heapify, heappop, heappush

from evfabric.benchmarking import Figure, median_of, timed
from evfabric.sim import run as simulate
from evfabric.sim.models import CarWash, Phold

N, E, R, L, MEAN = 1024, 16, 0.1, 0.1, 1.0


def bare_heapq(n: int, e: int, r: float, lookahead: float, mean: float, until: float, seed: int = 1) -> int:
    """The reference loop: one heap of (time, lp), one random stream, nothing else."""
    rand = random.Random(seed).random
    log = math.log
    heap = [(lookahead - mean * log(1.0 - rand()), lp) for lp in range(n) for _ in range(e)]
    heapify(heap)
    count = 0
    while heap:
        t, lp = heappop(heap)
        if t > until:
            break
        count += 1
        dst = int(rand() * n) if rand() < r else lp
        heappush(heap, (t + lookahead - mean * log(1.0 - rand()), dst))
    return count


def simpy_phold(n: int, e: int, r: float, lookahead: float, mean: float, until: float, seed: int = 1) -> int:
    """PHOLD in SimPy, callback style (one timeout event per PHOLD event)."""
    import simpy

    env = simpy.Environment()
    rand = random.Random(seed).random
    log = math.log
    count = [0]
    handlers: list = []

    def make(lp: int):
        def on_event(_event: object) -> None:
            count[0] += 1
            dst = int(rand() * n) if rand() < r else lp
            env.timeout(lookahead - mean * log(1.0 - rand())).callbacks.append(handlers[dst])

        return on_event

    handlers.extend(make(lp) for lp in range(n))
    for lp in range(n):
        for _ in range(e):
            env.timeout(lookahead - mean * log(1.0 - rand())).callbacks.append(handlers[lp])
    env.run(until=until)
    return count[0]


def _interleaved(fns: dict[str, Callable[[], int]], repeat: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median events/s of each loop, the loops taking turns so that they share the machine's
    load (this machine is shared and noisy): one repetition of each, then the next."""
    rates: dict[str, list[float]] = {k: [] for k in fns}
    counts: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            box: list[int] = []
            seconds = timed(lambda fn=fn, box=box: box.append(fn()))
            counts[name] = box[0]
            rates[name].append(box[0] / seconds)
    return {k: median_of(v) for k, v in rates.items()}, counts


def run(quick: bool = False) -> list[Figure]:
    n, until, repeat = (256, 4.0, 2) if quick else (N, 40.0, 3)
    par_repeat = 1 if quick else repeat  # each parallel run spawns two processes
    model = Phold(n=n, start_events=E, remote=R, lookahead=L, mean=MEAN, seed=1)
    params = {"N": n, "E": E, "R": R, "L": L, "until": until}

    reference = simulate(model, until).results
    load_before = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    rates, counts = _interleaved(
        {
            "ours": lambda: simulate(model, until).stats.committed,
            "bare": lambda: bare_heapq(n, E, R, L, MEAN, until),
            "simpy": lambda: simpy_phold(n, E, R, L, MEAN, until),
        },
        repeat,
    )
    ours = rates["ours"]
    figures = [
        Figure("sequential", "events/s", ours, "bare heapq loop", rates["bare"],
               notes={**params, "events": counts["ours"], "bare_events": counts["bare"],
                      "load_avg_before": load_before, "load_avg_after": round(os.getloadavg()[0], 2)}),
        Figure("sequential_vs_simpy", "events/s", ours, "SimPy (callbacks)", rates["simpy"], notes={**params, "simpy_events": counts["simpy"]}),
    ]
    runs = {
        "conservative_2w": ("conservative", {"sync": "windows"}),
        "conservative_null_2w": ("conservative", {"sync": "null"}),
        "optimistic_2w": ("optimistic", {"batch": 2048}),
    }
    efficiency: list[float] = []
    for name, (mode, kw) in runs.items():
        rates, peers, notes = [], [], {}
        for _ in range(par_repeat):
            # The peer runs right before, so that both see the same load on the shared machine.
            peers.append(simulate(model, until).stats.event_rate)
            t0 = time.perf_counter()
            res = simulate(model, until, mode=mode, workers=2, placement="processes", **kw)
            total = time.perf_counter() - t0
            s = res.stats
            rates.append(s.event_rate)
            if mode == "optimistic":
                efficiency.append(s.efficiency)
            notes = {
                "speedup": None,
                "rounds": s.rounds,
                "remote_fraction": round(s.remote_fraction, 4),
                "sync_s": round(s.sync_seconds, 3),
                "startup_s": round(total - s.wall_seconds, 3),
                "same_results": res.results == reference,
                "load_avg": round(os.getloadavg()[0], 2),
                **kw,
            }
        fig = Figure(name, "events/s", median_of(rates), "our sequential (run alongside)", median_of(peers), notes={**params, **notes})
        fig.notes["speedup"] = round(fig.ratio, 3)
        figures.append(fig)
    figures.append(
        Figure("optimistic_efficiency", "fraction", median_of(efficiency), "no rollback", 1.0, notes={**params, "runs": efficiency})
    )
    figures.append(worst_efficiency(quick))
    return figures


def worst_efficiency(quick: bool = False) -> Figure:
    """The heavy-rollback configurations of issue 16, throttled (default) and not.

    GVT rounds are synchronous, so efficiency does not depend on the placement: threads."""
    heavy = [
        ("phold_64_r0.9_l0.001", Phold(n=64, remote=0.9, lookahead=0.001, seed=1), 20.0, None),
        ("carwash_split", CarWash(seed=1), 500.0 if quick else 2000.0, [0, 0, 1, 0, 1]),
    ]
    notes: dict[str, object] = {"workers": 2, "placement": "threads"}
    worst = 1.0
    for name, model, until, owner in heavy:
        on = simulate(model, until, mode="optimistic", workers=2, owner=owner).stats
        off_until = min(until, 5.0 if quick else 200.0)  # unthrottled, the split car wash takes ~25 s for 2,000
        off = simulate(model, off_until, mode="optimistic", workers=2, owner=owner, batch=1024, adaptive=False).stats
        worst = min(worst, on.efficiency)
        notes[name] = {
            "until": until,
            "efficiency": round(on.efficiency, 4),
            "rolled_back": on.rolled_back,
            "wall_s": round(on.wall_seconds, 3),
            "unthrottled_until": off_until,
            "unthrottled_efficiency": round(off.efficiency, 4),
            "unthrottled_rolled_back": off.rolled_back,
            "unthrottled_wall_s": round(off.wall_seconds, 3),
        }
    return Figure("optimistic_worst_efficiency", "fraction", worst, "no rollback", 1.0, notes=notes)
