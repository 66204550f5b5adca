"""HTC job status (Nitro): event-driven vs polling, on the same simulated workers and broker.

Figures (lower is better; each approach has the other as its peer, measured in the same run):
* ``events_status_s`` / ``polling_status_s``: time to an accurate status, the median over the
  run of "how long after instant t does the coordinator's status reflect everything up to t"
  (for polling, Nitro's JOB_STATUS_TIME);
* ``*_staleness_p95_s``: the 95th percentile of the age of the oldest change missing from the status;
* ``*_bytes``: payload bytes sent by everyone; ``*_coordinator_cpu_s``: the coordinator's CPU time.

Workers emit a message per change (``emit="each"``); polling rounds start every 0.1 s. Full
size: the post's scenario, 100,000 tasks on 100 workers (about a minute: time-compressed
tasks of 0.1 s on average, 4 at a time per node); ``quick``: 2,000 tasks on 20 workers. With
fewer tasks per node the snapshots are smaller, rounds shorter, and polling keeps up better. The embedded broker is started and stopped here. Each
status figure is a median over ~600 instants of one run rather than over repeated runs.
"""

from __future__ import annotations

from pathlib import Path

from evfabric.benchmarking import Figure
from evfabric.htc.compare import compare_on_embedded_broker, figures
from evfabric.htc.config import JobConfig
from evfabric.htc.experiment import RunResult
from evfabric.htc.worker import WorkerConfig

_last: dict[str, RunResult] = {}


def run(quick: bool = False) -> list[Figure]:
    each = WorkerConfig(emit="each")  # as the demo: a message per change, the fabric client batches bursts
    cfg = (JobConfig(tasks=2_000, workers=20, task_time=0.05, worker=each) if quick
           else JobConfig(tasks=100_000, workers=100, worker=each))
    results = compare_on_embedded_broker(cfg)
    _last.clear()
    _last.update(results)
    return figures(results)


def plots(directory: Path) -> list[Path]:
    """Save the staleness plot of the last :func:`run` in ``directory``; return the files written."""
    if not _last:
        return []
    from evfabric.htc.plot import plot_staleness

    return [plot_staleness(_last, Path(directory) / "htc_staleness.png")]
