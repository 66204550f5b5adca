"""The shipped models against queueing and epidemic theory."""

import math

import pytest

from evfabric.sim import run
from evfabric.sim.models import CarWash, Epidemic, final_size_theory, mmc_theory


def _mean_over_seeds(model_for_seed, until, keys, seeds=(1, 2, 3)):
    sums = dict.fromkeys(keys, 0.0)
    for s in seeds:
        res = run(model_for_seed(s), until).results
        for k in keys:
            sums[k] += res[k] / len(seeds)
    return sums


@pytest.mark.parametrize(("machines", "wash_mean"), [(2, 1.6), (1, 0.7), (3, 2.4)])
def test_carwash_is_an_mmc_queue(machines, wash_mean):
    # Exponential arrivals (rate 1) and washes, instant attendant: Erlang C gives W and Lq.
    theory = mmc_theory(1.0, 1.0 / wash_mean, machines)
    got = _mean_over_seeds(
        lambda s: CarWash(wash_mean=wash_mean, machines=machines, seed=s),
        20_000,
        ("mean_time_in_system", "mean_queue_length"),
    )
    assert got["mean_time_in_system"] == pytest.approx(theory["W"], rel=0.08)
    assert got["mean_queue_length"] == pytest.approx(theory["Lq"], rel=0.12)


def test_carwash_with_deterministic_washes_follows_pollaczek_khinchine():
    # One machine, constant wash time: M/D/1, Lq = rho^2 / (2 (1 - rho)).
    rho = 0.7
    got = _mean_over_seeds(
        lambda s: CarWash(machines=1, wash_mean=rho, wash="deterministic", seed=s),
        20_000,
        ("mean_time_in_system", "mean_queue_length"),
    )
    lq = rho**2 / (2 * (1 - rho))
    assert got["mean_queue_length"] == pytest.approx(lq, rel=0.1)
    assert got["mean_time_in_system"] == pytest.approx(lq / 1.0 + rho, rel=0.08)


def test_carwash_attendant_time_adds_to_time_in_system():
    base = run(CarWash(seed=4, machines=2, wash_mean=0.5), 5000).results
    slow = run(CarWash(seed=4, machines=2, wash_mean=0.5, attendant_time=0.3), 5000).results
    assert slow["mean_time_in_system"] > base["mean_time_in_system"] + 0.25
    assert base["departed"] == pytest.approx(5000, rel=0.05)


def test_carwash_machine_utilisation_matches_offered_load():
    res = run(CarWash(seed=5, machines=2, wash_mean=1.6), 20_000).results
    assert sum(res["utilization"]) == pytest.approx(1.6, rel=0.05)  # lambda / mu busy machines


def test_epidemic_final_size_matches_bond_percolation():
    ep_args = {"people": 3000, "mean_degree": 4.0, "beta": math.log(2.0), "infectious": 1.0, "initial": 10}
    z = final_size_theory(4.0, math.log(2.0), 1.0)
    assert z == pytest.approx(0.797, abs=0.002)
    got = _mean_over_seeds(lambda s: Epidemic(seed=s, **ep_args), math.inf, ("attack_rate",))
    assert got["attack_rate"] == pytest.approx(z, abs=0.04)


def test_epidemic_below_threshold_stays_small():
    # k T = 4 * (1 - exp(-0.1)) = 0.38 < 1: no major outbreak, final size O(initial).
    assert final_size_theory(4.0, 0.1, 1.0) == 0.0
    res = run(Epidemic(people=3000, beta=0.1, initial=10, seed=1)).results
    assert res["attack_rate"] < 0.03
    assert res["infected"] >= 10
