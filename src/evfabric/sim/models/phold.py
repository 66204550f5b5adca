"""PHOLD, the standard synthetic benchmark of parallel discrete-event simulation.

``n`` LPs start with ``start_events`` events each. Handling an event schedules exactly one new
event ``lookahead + Exp(mean)`` later, at a uniformly chosen LP (possibly itself) with
probability ``remote``, else at the same LP. (ROSS's parameters: nlp, start-events,
remote, lookahead, mean.)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.sim.lp import LP, Model

__all__ = ["Phold", "PholdLP"]

_log = math.log


class PholdLP(LP):
    """One PHOLD LP; its state is the number of events it handled and the sum of their times."""

    __slots__ = ("count", "lookahead", "mean", "n", "remote", "start", "tsum")  # compact: 1000s of LPs

    def __init__(self, n: int, start: int, remote: float, lookahead: float, mean: float) -> None:
        self.n, self.start, self.remote, self.lookahead, self.mean = n, start, remote, lookahead, mean
        self.count = 0
        self.tsum = 0.0

    def init(self) -> None:
        for _ in range(self.start):
            self.send(self.id, "e", None, self.lookahead + self.rng.exponential(self.mean))

    def handle(self, kind: str, data: Any) -> None:
        random = self.rng.random
        self.count += 1
        self.tsum += self.now
        dst = int(random() * self.n) if random() < self.remote else self.id
        # rng.exponential(mean), inlined: this handler is the benchmark's inner loop.
        self.send(dst, "e", None, self.lookahead - self.mean * _log(1.0 - random()))

    def state(self) -> Any:
        return self.count, self.tsum

    def set_state(self, state: Any) -> None:
        self.count, self.tsum = state

    def finish(self) -> dict[str, Any]:
        return {"count": self.count, "tsum": self.tsum}


@dataclass
class Phold(Model):
    """PHOLD with ``n`` LPs. Results: total events and a digest of every LP's final state
    (equal digests mean every LP handled the same events at the same times)."""

    n: int = 64
    start_events: int = 16
    remote: float = 0.1
    lookahead: float = 0.1
    mean: float = 1.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.n < 1 or self.start_events < 0 or not 0 <= self.remote <= 1 or self.lookahead < 0 or self.mean < 0:
            raise ConfigError("PHOLD needs n >= 1, start_events >= 0, 0 <= remote <= 1, lookahead >= 0, mean >= 0")
        self.size = self.n

    def make_lp(self, i: int) -> LP:
        return PholdLP(self.n, self.start_events, self.remote, self.lookahead, self.mean)

    def summarize(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        digest = hashlib.sha256(repr([(r["count"], r["tsum"]) for r in reports]).encode()).hexdigest()[:16]
        return {"events": sum(r["count"] for r in reports), "digest": digest}
