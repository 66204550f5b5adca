"""One job's settings and its layout: worker and relay names, who sends to whom."""

from __future__ import annotations

from dataclasses import dataclass, field

from evfabric.core.errors import ConfigError
from evfabric.htc.model import relay_topic, up_topic
from evfabric.htc.worker import WorkerConfig

__all__ = ["APPROACHES", "JobConfig"]

APPROACHES = ("events", "polling")


@dataclass(frozen=True)
class JobConfig:
    """A job of ``tasks`` simulated tasks on ``workers`` nodes, and how status is kept.

    Durations are time-compressed: ``task_time`` is the mean task length in seconds. With
    ``relays`` > 0 the workers report through that many relays (worker ``i`` to relay
    ``i % relays``). ``loss`` is the fraction of best-effort messages (task, metric, heartbeat)
    each worker's link drops on purpose. ``poll_interval`` is the polling coordinator's period
    (round start to round start); ``misses`` heartbeats missed mark a node unreachable.
    """

    tasks: int = 10_000
    workers: int = 20
    per_assignment: int = 50
    task_time: float = 0.1
    fail_rate: float = 0.01
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    relays: int = 0
    relay_mode: str = "batch"
    relay_interval: float = 0.05
    loss: float = 0.0
    poll_interval: float = 0.1
    misses: int = 3
    request_timeout: float = 2.0
    timeout: float = 300.0
    seed: int = 1
    job: str = "job1"

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.workers < 1 or self.per_assignment < 1:
            raise ConfigError("tasks, workers and per_assignment must be >= 1")
        if not 0.0 <= self.loss < 1.0:
            raise ConfigError(f"loss must be in [0, 1), got {self.loss}")
        if self.relays < 0 or self.poll_interval < 0 or self.misses < 1:
            raise ConfigError("need relays >= 0, poll_interval >= 0, misses >= 1")

    @property
    def worker_ids(self) -> list[str]:
        """``w0000``, ``w0001``..."""
        return [f"w{i:04d}" for i in range(self.workers)]

    @property
    def relay_ids(self) -> list[str]:
        """``r000``, ``r001``..."""
        return [f"r{i:03d}" for i in range(self.relays)]

    def uplink(self, index: int) -> str:
        """The topic worker number ``index`` publishes on."""
        wid = self.worker_ids[index]
        if self.relays:
            return relay_topic(self.job, self.relay_ids[index % self.relays], wid)
        return up_topic(self.job, wid)
