"""Event-based coordination: tasks that interact only through events.

* :class:`Task` (and :class:`Facade` for an existing component), grouped in a :class:`Program`;
* :func:`execute`: run a timed program sequentially, conservatively (windows or null
  messages) or optimistically (Time Warp), on threads, processes or MPI ranks;
* :class:`Runtime`: untimed tasks with ordering ``none``, ``fifo`` or ``causal``, look-ahead
  inboxes and exact termination and deadlock detection, on threads, processes or MPI ranks.
"""

from evfabric.coord.execute import MODES, PLACEMENTS, Execution, execute
from evfabric.coord.ordering import Message
from evfabric.coord.placement import balance, measured_weights
from evfabric.coord.program import Program
from evfabric.coord.runtime import Runtime
from evfabric.coord.stats import Stats
from evfabric.coord.task import Facade, Task

__all__ = [
    "MODES",
    "PLACEMENTS",
    "Execution",
    "Facade",
    "Message",
    "Program",
    "Runtime",
    "Stats",
    "Task",
    "balance",
    "execute",
    "measured_weights",
]
