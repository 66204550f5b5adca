"""The staleness plot: how old the coordinator's status was, over the run, per approach (PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from evfabric.htc.experiment import RunResult

__all__ = ["legend_label", "plot_staleness"]

COLOURS = {"events": "tab:blue", "polling": "tab:orange"}


def legend_label(name: str, median_s: float) -> str:
    """A run's legend entry: its median staleness in milliseconds (``events: median 1.3 ms``)."""
    ms = median_s * 1000.0
    return f"{name}: median {ms:.{1 if ms < 100 else 0}f} ms"


def plot_staleness(results: Mapping[str, RunResult], path: str | Path, *, title: str | None = None) -> Path:
    """Draw staleness (top) and unseen changes (bottom) over time for each run; save to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, r in results.items():
        tl = r.timeline
        colour = COLOURS.get(name)
        label = legend_label(name, r.summary.get("staleness_median_s", 0.0))
        top.plot(tl.times, tl.staleness, label=label, color=colour, linewidth=0.9)
        bottom.plot(tl.times, tl.unseen, label=name, color=colour, linewidth=0.9)
    top.set_ylabel("staleness (s)\noldest unseen change")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("changes not yet\nin the status")
    bottom.set_xlabel("seconds since the job started")
    bottom.grid(alpha=0.3)
    any_run = next(iter(results.values()), None)
    if title is None and any_run is not None:
        c = any_run.config
        title = f"HTC job status: {c.tasks:,} tasks on {c.workers} workers"
    fig.suptitle(title or "HTC job status")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
