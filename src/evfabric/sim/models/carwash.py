"""The car wash of the Event-Based Coordination pattern ([Mis86]).

Cars arrive at an attendant, who directs each to a free machine or queues it; each machine
washes one car at a time and tells the attendant when it is free again; washed cars leave by
the sink. LPs: 0 source, 1 attendant, 2 .. c+1 machines, c+2 sink.

The attendant, the machines and the sink talk without delay, so they form one group (always on
one processing element). The source announces each car ``lead`` time units before it reaches
the attendant, which is the model's lookahead between the two groups; it shifts every arrival
by the same constant and changes no statistic. With exponential arrivals and washes and
``attendant_time = 0`` the facility is an M/M/c queue (:func:`mmc_theory`).
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from dataclasses import dataclass
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.sim.lp import LP, Model
from evfabric.sim.streams import Stream

__all__ = ["CarWash", "mmc_theory"]

SOURCE, ATTENDANT = 0, 1
DISTRIBUTIONS = ("exponential", "deterministic", "uniform")


def draw(rng: Stream, dist: str, mean: float) -> float:
    """A variate of ``dist`` with the given mean (uniform means U(0, 2 mean))."""
    if dist == "exponential":
        return rng.exponential(mean)
    if dist == "deterministic":
        return mean
    return rng.uniform(0.0, 2.0 * mean)


class Source(LP):
    """Generates cars: car k reaches the attendant at ``lead`` + the k-th arrival instant."""

    def __init__(self, cw: CarWash) -> None:
        self.dist, self.mean, self.lead = cw.arrival, cw.arrival_mean, cw.lead
        self.cars = 0

    def init(self) -> None:
        self.send(self.id, "next", None, draw(self.rng, self.dist, self.mean))

    def handle(self, kind: str, data: Any) -> None:
        self.cars += 1
        self.send(ATTENDANT, "arrive", (self.cars, self.now + self.lead), self.lead)
        self.send(self.id, "next", None, draw(self.rng, self.dist, self.mean))

    def state(self) -> Any:
        return self.cars

    def set_state(self, state: Any) -> None:
        self.cars = state

    def finish(self) -> dict[str, Any]:
        return {"generated": self.cars}


class Attendant(LP):
    """Directs each car to the free machine with the lowest id, or queues it (FIFO)."""

    def __init__(self, cw: CarWash) -> None:
        self.delay, self.warmup = cw.attendant_time, cw.warmup
        self.queue: deque[tuple[int, float]] = deque()
        self.free = list(range(2, 2 + cw.machines))
        self.area = 0.0  # integral of the queue length over time
        self.last = 0.0
        self.max_queue = 0
        self.waited = 0

    def _advance(self) -> None:
        start = self.last if self.last > self.warmup else self.warmup  # leave the warm-up out
        if self.now > start:
            self.area += len(self.queue) * (self.now - start)
        self.last = self.now

    def handle(self, kind: str, data: Any) -> None:
        self._advance()
        if kind == "arrive":
            if self.free:
                self.send(self.free.pop(0), "wash", data, self.delay)
            else:
                self.queue.append(data)
                self.waited += 1
                self.max_queue = max(self.max_queue, len(self.queue))
        elif self.queue:  # "free": a machine is done
            self.send(data, "wash", self.queue.popleft(), self.delay)
        else:
            insort(self.free, data)

    def state(self) -> Any:
        return deque(self.queue), list(self.free), self.area, self.last, self.max_queue, self.waited

    def set_state(self, state: Any) -> None:
        self.queue, self.free, self.area, self.last, self.max_queue, self.waited = state

    def finish(self) -> dict[str, Any]:
        if math.isfinite(self.now):
            self._advance()
        end = self.last  # the run's end time (or the last event's when the run had no end)
        return {"queue_area": self.area, "end": end, "max_queue": self.max_queue, "waited": self.waited}


class Machine(LP):
    """Washes one car at a time, then sends it to the sink and tells the attendant."""

    def __init__(self, cw: CarWash) -> None:
        self.dist, self.mean, self.sink = cw.wash, cw.wash_mean, cw.size - 1
        self.washed = 0
        self.busy = 0.0

    def handle(self, kind: str, data: Any) -> None:
        if kind == "wash":
            t = draw(self.rng, self.dist, self.mean)
            self.busy += t
            self.send(self.id, "done", data, t)
        else:
            self.washed += 1
            self.send(self.sink, "depart", data)
            self.send(ATTENDANT, "free", self.id)

    def state(self) -> Any:
        return self.washed, self.busy

    def set_state(self, state: Any) -> None:
        self.washed, self.busy = state

    def finish(self) -> dict[str, Any]:
        return {"washed": self.washed, "busy": self.busy}


class Sink(LP):
    """Records each departing car (an outside-world action: ``emit``) and its time in system."""

    def __init__(self, cw: CarWash) -> None:
        self.warmup = cw.warmup
        self.cars = self.observed = 0
        self.total = 0.0

    def handle(self, kind: str, data: Any) -> None:
        car, arrived = data
        self.cars += 1
        if arrived >= self.warmup:  # cars that arrived during the warm-up are not observed
            self.observed += 1
            self.total += self.now - arrived
        self.emit((car, arrived, self.now))

    def state(self) -> Any:
        return self.cars, self.observed, self.total

    def set_state(self, state: Any) -> None:
        self.cars, self.observed, self.total = state

    def finish(self) -> dict[str, Any]:
        return {"departed": self.cars, "observed": self.observed, "total_time": self.total}


@dataclass
class CarWash(Model):
    """The car wash; times in arbitrary units. Results: ``mean_time_in_system`` (from arrival
    at the attendant to leaving a machine, over departed cars that arrived at or after
    ``warmup``) and ``mean_queue_length`` (time average of the attendant's queue over
    [warmup, until]); machine utilisations are over the whole run."""

    arrival_mean: float = 1.0
    wash_mean: float = 1.6
    machines: int = 2
    attendant_time: float = 0.0
    arrival: str = "exponential"
    wash: str = "exponential"
    lead: float = 0.5
    warmup: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.arrival not in DISTRIBUTIONS or self.wash not in DISTRIBUTIONS:
            raise ConfigError(f"arrival and wash must be among {DISTRIBUTIONS}")
        if self.machines < 1 or self.lead <= 0 or self.attendant_time < 0 or self.warmup < 0:
            raise ConfigError("the car wash needs machines >= 1, lead > 0, attendant_time >= 0, warmup >= 0")
        self.size = self.machines + 3
        self.lookahead = self.lead

    def make_lp(self, i: int) -> LP:
        if i == SOURCE:
            return Source(self)
        if i == ATTENDANT:
            return Attendant(self)
        return Sink(self) if i == self.size - 1 else Machine(self)

    def group(self, i: int) -> Any:
        return "source" if i == SOURCE else "facility"

    def weight(self, i: int) -> float:
        return 1.0 if i in (SOURCE, self.size - 1) else 2.0

    def summarize(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        sink, att = reports[-1], reports[ATTENDANT]
        machines = reports[2:-1]
        horizon = att["end"]
        observed = horizon - self.warmup
        return {
            "generated": reports[SOURCE]["generated"],
            "departed": sink["departed"],
            "mean_time_in_system": sink["total_time"] / sink["observed"] if sink["observed"] else math.nan,
            "mean_queue_length": att["queue_area"] / observed if observed > 0 else math.nan,
            "max_queue": att["max_queue"],
            "waited": att["waited"],
            "washed": [m["washed"] for m in machines],
            "utilization": [m["busy"] / horizon if horizon > 0 else math.nan for m in machines],
        }


def mmc_theory(arrival_rate: float, service_rate: float, c: int) -> dict[str, float]:
    """M/M/c steady state (Erlang C): probability of waiting, Lq, Wq, W and L."""
    a = arrival_rate / service_rate
    rho = a / c
    if rho >= 1:
        raise ConfigError(f"unstable queue: utilisation {rho:.3f} >= 1")
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    lq = p_wait * rho / (1 - rho)
    wq = lq / arrival_rate
    w = wq + 1 / service_rate
    return {"p_wait": p_wait, "Lq": lq, "Wq": wq, "W": w, "L": arrival_rate * w, "rho": rho}
