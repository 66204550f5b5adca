"""The coordinator's picture of a job: tasks per state (in total and per node), nodes alive.

:class:`JobStatus` is built from news alone (task messages, snapshots, heartbeats); it never
looks at a worker's memory. News is merged monotonically: a task's state only moves forward
(``queued < running < done/failed``), so duplicated, late or out-of-order news cannot undo
anything, and a snapshot can be merged at any time.

For measurement it also notes when it first learned that each task was running
(:attr:`learned_run`) and finished (:attr:`learned_end`), which :mod:`evfabric.htc.analysis`
compares with the workers' true times.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from evfabric.core.errors import ConfigError
from evfabric.htc.model import DONE, FAILED, RUNNING, STATE_NAMES, Assignment

__all__ = ["JobStatus", "NodeView"]

INF = float("inf")


@dataclass
class NodeView:
    """What the coordinator knows of one node."""

    tasks: list[int]
    counts: list[int]
    reachable: bool = True
    last_seen: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)  # metric -> "high" | "normal"


class JobStatus:
    """Tasks per state and per node, nodes reachable or not; see the module docstring."""

    def __init__(self, plan: dict[str, list[Assignment]]) -> None:
        self.nodes: dict[str, NodeView] = {}
        owner: dict[int, str] = {}
        for worker, assignments in plan.items():
            tasks = [t for a in assignments for t in a.tasks]
            self.nodes[worker] = NodeView(tasks=tasks, counts=[len(tasks), 0, 0, 0])
            for t in tasks:
                owner[t] = worker
        self.size = len(owner)
        if sorted(owner) != list(range(self.size)):
            raise ConfigError("the plan must cover tasks 0..N-1 exactly once")
        self._owner = [owner[t] for t in range(self.size)]
        self.state = bytearray(self.size)
        self.counts = [self.size, 0, 0, 0]
        self.learned_run = array("d", [INF]) * self.size
        self.learned_end = array("d", [INF]) * self.size
        self.changes = 0

    # -- merging news -------------------------------------------------------------------------------

    def advance(self, task: int, new: int, now: float) -> bool:
        """Move ``task`` forward to ``new`` (ignored unless later); True if it moved."""
        old = self.state[task]
        if new <= old or old in (DONE, FAILED):
            return False
        self.state[task] = new
        self.counts[old] -= 1
        self.counts[new] += 1
        node = self.nodes[self._owner[task]].counts
        node[old] -= 1
        node[new] += 1
        if new == RUNNING:
            self.learned_run[task] = now
        else:
            self.learned_end[task] = now
        self.changes += 1
        return True

    def apply_tasks(self, running: Iterable[int], done: Iterable[int], failed: Iterable[int], now: float) -> None:
        """Merge a task message's lists."""
        advance = self.advance
        for t in running:
            advance(t, RUNNING, now)
        for t in done:
            advance(t, DONE, now)
        for t in failed:
            advance(t, FAILED, now)

    def apply_snapshot(self, worker: str, states: bytes, now: float) -> int:
        """Merge a worker's snapshot (its tasks' states, in assignment order); return tasks moved."""
        node = self.nodes[worker]
        if len(states) != len(node.tasks):
            raise ConfigError(f"snapshot of {worker} has {len(states)} tasks, the plan gives it {len(node.tasks)}")
        mine = self.state
        moved = 0
        for task, s in zip(node.tasks, states):
            if s > mine[task] and self.advance(task, s, now):
                moved += 1
        return moved

    def seen(self, worker: str, now: float) -> bool:
        """Note a sign of life; True if the node was unreachable and is back."""
        node = self.nodes[worker]
        node.last_seen = now
        if not node.reachable:
            node.reachable = True
            return True
        return False

    # -- reading ------------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """Every task is done or failed."""
        return self.counts[DONE] + self.counts[FAILED] == self.size

    @property
    def unreachable(self) -> list[str]:
        """Nodes presumed unreachable."""
        return [w for w, n in self.nodes.items() if not n.reachable]

    def totals(self) -> dict[str, int]:
        """Tasks per state name."""
        return dict(zip(STATE_NAMES, self.counts))

    def node_states(self) -> dict[str, list[int]]:
        """Per node: tasks ``[queued, running, done, failed]``."""
        return {w: list(n.counts) for w, n in self.nodes.items()}

    def hot_nodes(self) -> dict[str, list[str]]:
        """Per metric, the nodes whose threshold state is ``high``."""
        out: dict[str, list[str]] = {}
        for w, n in self.nodes.items():
            for metric, state in n.alarms.items():
                if state == "high":
                    out.setdefault(metric, []).append(w)
        return out

    def touch_all(self, now: float | None = None) -> None:
        """Mark every node as just seen (at the start of a job)."""
        now = time.time() if now is None else now
        for n in self.nodes.values():
            n.last_seen = now

