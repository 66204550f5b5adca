"""The HTC job-status system (Nitro): workers, relays, an event-driven coordinator with
reconciliation, and the polling baseline, on any link (in-process or a real broker).

    cfg = JobConfig(tasks=10_000, workers=20)
    result = run_on_broker("events", cfg, broker.url)    # or "polling"

See docs/htc.md for the walk-through and the measurements.
"""

from evfabric.htc.analysis import Timeline, summarise, timeline
from evfabric.htc.config import APPROACHES, JobConfig
from evfabric.htc.coordinator import Coordinator, EventCoordinator, PollingCoordinator
from evfabric.htc.experiment import RunResult, make_coordinator, run_job, run_on_broker
from evfabric.htc.host import ProcessHosts, WorkerHost
from evfabric.htc.link import Link, LocalHub, LocalLink, LossyLink, WireStats
from evfabric.htc.model import DONE, FAILED, QUEUED, RUNNING, STATE_NAMES, Assignment, plan_assignments
from evfabric.htc.reconcile import SeqTracker
from evfabric.htc.relay import Relay
from evfabric.htc.runners import SimulatedRunner, SubprocessRunner
from evfabric.htc.status import JobStatus
from evfabric.htc.thresholds import DEFAULT_THRESHOLDS, HostMetrics, SimulatedMetrics, Threshold, ThresholdSpec
from evfabric.htc.worker import EMIT_MODES, Worker, WorkerConfig

__all__ = [
    "APPROACHES",
    "DEFAULT_THRESHOLDS",
    "DONE",
    "EMIT_MODES",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATE_NAMES",
    "Assignment",
    "Coordinator",
    "EventCoordinator",
    "HostMetrics",
    "JobConfig",
    "JobStatus",
    "Link",
    "LocalHub",
    "LocalLink",
    "LossyLink",
    "PollingCoordinator",
    "ProcessHosts",
    "Relay",
    "RunResult",
    "SeqTracker",
    "SimulatedMetrics",
    "SimulatedRunner",
    "SubprocessRunner",
    "Threshold",
    "ThresholdSpec",
    "Timeline",
    "WireStats",
    "Worker",
    "WorkerConfig",
    "WorkerHost",
    "make_coordinator",
    "plan_assignments",
    "run_job",
    "run_on_broker",
    "summarise",
    "timeline",
]
