"""An SIR epidemic on a contact network, one LP per person.

The network is a G(n, m) random graph with mean degree ``mean_degree`` (Poisson degrees for
large n), built from ``seed``. A person infected at time t is latent for ``latent``, then
infectious for exactly ``infectious`` time units, then recovered. Over each contact, infection
passes after an Exp(rate ``beta``) delay if that falls within the infectious period, so each
contact transmits with probability T = 1 - exp(-beta * infectious), independently: the final
size is that of bond percolation, ``z = 1 - exp(-k T z)`` for Poisson degree k
(:func:`final_size_theory`). The latent period is the model's lookahead.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.sim.lp import LP, Model

__all__ = ["Epidemic", "Person", "final_size_theory"]

SUSCEPTIBLE, EXPOSED, RECOVERED = 0, 1, 2


class Person(LP):
    """One person: susceptible until a first ``infect`` event, then exposed, then recovered."""

    def __init__(self, contacts: list[int], seeded: bool, ep: Epidemic) -> None:
        self.contacts = contacts
        self.seeded = seeded
        self.beta, self.period, self.latent = ep.beta, ep.infectious, ep.latent
        self.status = SUSCEPTIBLE
        self.infected_at = math.nan
        self.infected = 0  # how many contacts this person infected (first infections only)

    def init(self) -> None:
        if self.seeded:
            self.send(self.id, "infect", -1)

    def handle(self, kind: str, data: Any) -> None:
        if kind == "recover":
            self.status = RECOVERED
            return
        if self.status != SUSCEPTIBLE:
            return
        self.status = EXPOSED
        self.infected_at = self.now
        rng = self.rng
        for other in self.contacts:
            tau = rng.exponential(1.0 / self.beta)
            if tau < self.period:
                self.send(other, "infect", self.id, self.latent + tau)
        self.send(self.id, "recover", None, self.latent + self.period)

    def state(self) -> Any:
        return self.status, self.infected_at

    def set_state(self, state: Any) -> None:
        self.status, self.infected_at = state

    def finish(self) -> dict[str, Any]:
        return {"status": self.status, "infected_at": self.infected_at}


@dataclass
class Epidemic(Model):
    """SIR on a random contact network. Results: ``attack_rate`` (fraction ever infected),
    ``peak_infectious`` and its time, ``duration`` (last recovery)."""

    people: int = 2000
    mean_degree: float = 4.0
    beta: float = math.log(2.0)
    infectious: float = 1.0
    latent: float = 0.2
    initial: int = 10
    seed: int = 1
    contacts: list[list[int]] = field(default_factory=list, repr=False)
    seeded: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.people < 2 or self.latent <= 0 or self.infectious <= 0 or self.beta <= 0:
            raise ConfigError("the epidemic needs people >= 2 and positive latent, infectious and beta")
        rnd = random.Random(self.seed)  # the network is part of the model, the same on every PE
        edges: set[tuple[int, int]] = set()
        target = round(self.mean_degree * self.people / 2)
        while len(edges) < target:
            a, b = rnd.randrange(self.people), rnd.randrange(self.people)
            if a != b:
                edges.add((min(a, b), max(a, b)))
        self.contacts = [[] for _ in range(self.people)]
        for a, b in sorted(edges):
            self.contacts[a].append(b)
            self.contacts[b].append(a)
        self.seeded = frozenset(rnd.sample(range(self.people), self.initial))
        self.size = self.people
        self.lookahead = self.latent

    def make_lp(self, i: int) -> LP:
        return Person(self.contacts[i], i in self.seeded, self)

    def weight(self, i: int) -> float:
        return 1.0 + len(self.contacts[i])

    def summarize(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        times = sorted(r["infected_at"] for r in reports if r["status"] != SUSCEPTIBLE)
        # Infectious over [t + latent, t + latent + period): sweep the start and end instants.
        marks = sorted([(t + self.latent, 1) for t in times] + [(t + self.latent + self.infectious, -1) for t in times])
        level = peak = 0
        peak_time = math.nan
        for when, step in marks:
            level += step
            if level > peak:
                peak, peak_time = level, when
        return {
            "infected": len(times),
            "attack_rate": len(times) / self.people,
            "peak_infectious": peak,
            "peak_time": peak_time,
            "duration": (times[-1] + self.latent + self.infectious) if times else 0.0,
        }


def final_size_theory(mean_degree: float, beta: float, infectious: float) -> float:
    """Bond-percolation final size on a Poisson network: the root of z = 1 - exp(-k T z)."""
    t = 1.0 - math.exp(-beta * infectious)
    r = mean_degree * t
    if r <= 1:
        return 0.0
    z = 1.0
    for _ in range(200):
        z = 1.0 - math.exp(-r * z)
    return z
