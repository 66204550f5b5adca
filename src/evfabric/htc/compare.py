"""Both approaches on the same workers, on an embedded broker, and the figures that compare them.

:func:`compare_on_embedded_broker` starts a :class:`~evfabric.broker.server.BrokerServer` in a
temporary directory, runs the job once event-driven and once polled (same config, same workers,
same seeds), stops the broker, and returns both results. :func:`figures` turns them into
:class:`~evfabric.benchmarking.Figure` s (each approach against the other; lower is better).
"""

from __future__ import annotations

from collections.abc import Callable

from evfabric.benchmarking import Figure
from evfabric.htc.config import APPROACHES, JobConfig
from evfabric.htc.experiment import RunResult, Tick, run_on_broker

__all__ = ["compare_on_embedded_broker", "figures"]


def compare_on_embedded_broker(cfg: JobConfig, *, processes: int = 1,
                               on_start: Callable[[str], Tick | None] | None = None) -> dict[str, RunResult]:
    """Run ``events`` then ``polling`` on a broker evfabric starts and stops itself.

    ``on_start(approach)`` may return a tick callback (a live display) for that run.
    """
    from evfabric.broker.server import BrokerServer

    results: dict[str, RunResult] = {}
    with BrokerServer() as srv:
        srv.start()
        for approach in APPROACHES:
            tick = on_start(approach) if on_start else None
            results[approach] = run_on_broker(approach, cfg, srv.url, processes=processes, on_tick=tick)
    return results


def figures(results: dict[str, RunResult]) -> list[Figure]:
    """``events_status_s`` and ``polling_status_s`` (time to an accurate status), then staleness,
    bytes and coordinator CPU, each approach with the other as its peer (lower is better)."""
    ev, po = results["events"], results["polling"]
    c = ev.config
    notes = {"tasks": c.tasks, "workers": c.workers, "emit": c.worker.emit, "interval_s": c.worker.interval,
             "poll_interval_s": c.poll_interval, "loss": c.loss, "relays": c.relays,
             "exact": {"events": ev.exact, "polling": po.exact}}
    out: list[Figure] = []

    def pair(key: str, unit: str, get: Callable[[RunResult], float]) -> None:
        out.append(Figure(f"events_{key}", unit, get(ev), "polling, same workers", get(po),
                          higher_is_better=False, notes=notes if key == "status_s" else {}))
        out.append(Figure(f"polling_{key}", unit, get(po), "events, same workers", get(ev), higher_is_better=False))

    pair("status_s", "s", lambda r: r.summary["status_s"])
    pair("staleness_p95_s", "s", lambda r: r.summary["staleness_p95_s"])
    pair("bytes", "bytes", lambda r: float(r.wire.bytes))
    pair("coordinator_cpu_s", "s", lambda r: r.coordinator_cpu_s)
    return out
