"""The shipped models against queueing and epidemic theory, within 3 %.

Each figure is the mean of independent replications (one seed each) after a warm-up; the tests
also check that the replications are precise enough for a 3 % check to mean something (the 95 %
confidence interval's half width is below 3 %)."""

import math
import runpy
from pathlib import Path

import pytest

from evfabric.sim import replicate, run
from evfabric.sim.models import CarWash, Epidemic, final_size_theory, mmc_theory

ROOT = Path(__file__).resolve().parents[2]
TOL = 0.03
WARMUP = 1000.0
CARWASH_KEYS = ("mean_time_in_system", "mean_queue_length")


def _check(interval, theory):
    assert interval.relative < TOL, f"replications too few for a {TOL:.0%} check: {interval}"
    assert interval.mean == pytest.approx(theory, rel=TOL), f"{interval} against theory {theory}"


@pytest.mark.parametrize(("machines", "wash_mean", "until", "seeds"), [(2, 1.6, 80_000, 12), (1, 0.7, 50_000, 8), (3, 2.4, 80_000, 12)])
def test_carwash_is_an_mmc_queue(machines, wash_mean, until, seeds):
    # Exponential arrivals (rate 1) and washes, instant attendant: Erlang C gives W and Lq.
    theory = mmc_theory(1.0, 1.0 / wash_mean, machines)
    got = replicate(
        lambda s: CarWash(wash_mean=wash_mean, machines=machines, seed=s, warmup=WARMUP),
        until, CARWASH_KEYS, seeds=range(1, seeds + 1),
    )
    _check(got["mean_time_in_system"], theory["W"])
    _check(got["mean_queue_length"], theory["Lq"])


def test_carwash_with_deterministic_washes_follows_pollaczek_khinchine():
    # One machine, constant wash time: M/D/1, Lq = rho^2 / (2 (1 - rho)).
    rho = 0.7
    got = replicate(
        lambda s: CarWash(machines=1, wash_mean=rho, wash="deterministic", seed=s, warmup=WARMUP),
        50_000, CARWASH_KEYS, seeds=range(1, 9),
    )
    lq = rho**2 / (2 * (1 - rho))
    _check(got["mean_queue_length"], lq)
    _check(got["mean_time_in_system"], lq / 1.0 + rho)


def test_the_warm_up_is_left_out_of_w_and_lq():
    # Start empty at a heavy load: the first time units have short waits and queues.
    cold = run(CarWash(machines=1, wash_mean=0.95, seed=2), 200.0).results
    warm = run(CarWash(machines=1, wash_mean=0.95, seed=2, warmup=100.0), 200.0).results
    assert warm["departed"] == cold["departed"]  # the same run, observed differently
    assert warm["mean_time_in_system"] != cold["mean_time_in_system"]
    assert warm["mean_queue_length"] != cold["mean_queue_length"]


def test_the_mmc_model_from_the_docs_runs_and_matches_erlang_c():
    # examples/mmc.py is the model docs/coordination.md walks through, line for line.
    doc = (ROOT / "docs" / "coordination.md").read_text()
    code = (ROOT / "examples" / "mmc.py").read_text()
    body = code[code.index("from collections"):code.index('if __name__')].strip()
    assert body in doc, "docs/coordination.md must show examples/mmc.py's model"
    assert len([ln for ln in body.splitlines() if ln.strip()]) <= 25
    ns = runpy.run_path(str(ROOT / "examples" / "mmc.py"))
    got = replicate(lambda s: ns["MMc"](seed=s), 80_000, ("W", "Lq"), seeds=range(1, 13))
    theory = mmc_theory(1.0, 0.625, 2)
    _check(got["W"], theory["W"])
    _check(got["Lq"], theory["Lq"])


def test_carwash_attendant_time_adds_to_time_in_system():
    base = run(CarWash(seed=4, machines=2, wash_mean=0.5), 5000).results
    slow = run(CarWash(seed=4, machines=2, wash_mean=0.5, attendant_time=0.3), 5000).results
    assert slow["mean_time_in_system"] > base["mean_time_in_system"] + 0.25
    assert base["departed"] == pytest.approx(5000, rel=0.05)


def test_carwash_machine_utilisation_matches_offered_load():
    res = run(CarWash(seed=5, machines=2, wash_mean=1.6), 50_000).results
    assert sum(res["utilization"]) == pytest.approx(1.6, rel=TOL)  # lambda / mu busy machines


def test_epidemic_final_size_matches_bond_percolation():
    ep_args = {"people": 10_000, "mean_degree": 4.0, "beta": math.log(2.0), "infectious": 1.0, "initial": 10}
    z = final_size_theory(4.0, math.log(2.0), 1.0)
    assert z == pytest.approx(0.797, abs=0.002)
    got = replicate(lambda s: Epidemic(seed=s, **ep_args), math.inf, ("attack_rate",), seeds=range(1, 5))
    _check(got["attack_rate"], z)


def test_epidemic_below_threshold_stays_small():
    # k T = 4 * (1 - exp(-0.1)) = 0.38 < 1: no major outbreak, final size O(initial).
    assert final_size_theory(4.0, 0.1, 1.0) == 0.0
    res = run(Epidemic(people=3000, beta=0.1, initial=10, seed=1)).results
    assert res["attack_rate"] < 0.03
    assert res["infected"] >= 10
