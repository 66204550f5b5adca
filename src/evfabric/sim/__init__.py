"""Discrete-event simulation on the coordination runtime.

Logical processes (:class:`LP`) with state and their own random :class:`Stream`, time-stamped
events, and :func:`run` in sequential, conservative or optimistic mode on threads, processes
or MPI ranks. Models: :mod:`evfabric.sim.models` (car wash, PHOLD, epidemic).
"""

from evfabric.coord.stats import Stats
from evfabric.sim.estimate import Interval, Tally, TimeAverage, confidence_interval, replicate
from evfabric.sim.lp import LP, Model
from evfabric.sim.run import Result, run
from evfabric.sim.streams import Stream

__all__ = [
    "LP",
    "Interval",
    "Model",
    "Result",
    "Stats",
    "Stream",
    "Tally",
    "TimeAverage",
    "confidence_interval",
    "replicate",
    "run",
]
