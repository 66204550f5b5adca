"""The vocabulary of the HTC job-status system: task states, topics and message bodies.

A *job* is ``N`` tasks numbered ``0..N-1``, cut into *assignments* (batches of tasks) that the
coordinator hands to *workers* (one per compute node). A task moves only forward:
``queued -> running -> done | failed``; states are small ints whose order is that progress, so
merging two views of a task is taking the larger code (late or duplicated news never regresses).

Topics (one job, id ``job``)::

    htc.<job>.up.<hop>            events going up to the coordinator (from a worker or a relay)
    htc.<job>.relay.<relay>.<hop> events going up to a relay
    htc.<job>.ctl.<worker>        request/reply with one worker (assign, status snapshot)

Message bodies are plain maps with short keys (they are counted on the wire); every body has a
kind ``k``: ``task`` (a batch of state changes), ``metric`` (a threshold crossing), ``hb``
(heartbeat), ``batch`` (a relay's bundle of other bodies). Task and metric messages carry the
worker's message sequence number ``s`` (1, 2, 3... per worker); a heartbeat carries the last
``s`` sent, so a lost message is noticed even when nothing follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evfabric.core.errors import ConfigError
from evfabric.core.topics import validate_topic

__all__ = [
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATE_NAMES",
    "Assignment",
    "ctl_topic",
    "plan_assignments",
    "relay_pattern",
    "relay_topic",
    "up_pattern",
    "up_topic",
]

QUEUED, RUNNING, DONE, FAILED = 0, 1, 2, 3
STATE_NAMES = ("queued", "running", "done", "failed")
FINISHED = (DONE, FAILED)

# message kinds
TASK, METRIC, HEARTBEAT, BATCH = "task", "metric", "hb", "batch"


@dataclass(frozen=True)
class Assignment:
    """A batch of tasks given to one worker at once."""

    id: int
    tasks: tuple[int, ...]

    def as_body(self) -> list[Any]:
        """The wire form: ``[id, [task, ...]]``."""
        return [self.id, list(self.tasks)]

    @classmethod
    def from_body(cls, item: list[Any]) -> Assignment:
        """Inverse of :meth:`as_body`."""
        return cls(int(item[0]), tuple(int(t) for t in item[1]))


def plan_assignments(tasks: int, workers: list[str], per_assignment: int) -> dict[str, list[Assignment]]:
    """Cut ``tasks`` tasks into assignments of ``per_assignment`` and deal them round-robin.

    Every worker gets the same number of tasks, give or take one assignment.
    """
    if tasks < 1 or not workers or per_assignment < 1:
        raise ConfigError(f"need tasks >= 1, workers and per_assignment >= 1 (got {tasks}, {len(workers)}, {per_assignment})")
    plan: dict[str, list[Assignment]] = {w: [] for w in workers}
    for aid, start in enumerate(range(0, tasks, per_assignment)):
        tasks_here = tuple(range(start, min(start + per_assignment, tasks)))
        plan[workers[aid % len(workers)]].append(Assignment(aid, tasks_here))
    return plan


def _segment(name: str, what: str) -> str:
    validate_topic(name)
    if "." in name:
        raise ConfigError(f"{what} must be one topic segment, got {name!r}")
    return name


def up_topic(job: str, hop: str) -> str:
    """Where ``hop`` (a worker or relay id) sends events meant for the coordinator."""
    return f"htc.{_segment(job, 'job id')}.up.{_segment(hop, 'component id')}"


def relay_topic(job: str, relay: str, hop: str) -> str:
    """Where ``hop`` sends events meant for ``relay``."""
    return f"htc.{_segment(job, 'job id')}.relay.{_segment(relay, 'relay id')}.{_segment(hop, 'component id')}"


def up_pattern(job: str) -> str:
    """The pattern the coordinator subscribes to: everything sent up to it."""
    return f"htc.{_segment(job, 'job id')}.up.?"


def relay_pattern(job: str, relay: str) -> str:
    """The pattern ``relay`` subscribes to: everything sent to it."""
    return f"htc.{_segment(job, 'job id')}.relay.{_segment(relay, 'relay id')}.?"


def ctl_topic(job: str, worker: str) -> str:
    """The request/reply topic of one worker."""
    return f"htc.{_segment(job, 'job id')}.ctl.{_segment(worker, 'worker id')}"
