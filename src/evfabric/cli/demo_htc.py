"""``evfabric demo htc``: the Nitro job-status comparison, polling vs events, on an embedded broker.

Starts a broker in a temporary directory, runs one job event-driven and once polled on the same
simulated workers (in a child process), shows the coordinator's status live, then prints the
comparison table and saves the staleness plot. ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from evfabric.core.errors import ConfigError


def _status_table(coord: Any, started: float) -> Table:
    status = coord.status
    totals = status.totals()
    t = Table(title=f"{coord.approach}: coordinator's live status ({time.time() - started:5.1f} s)", min_width=70)
    for col in ("queued", "running", "done", "failed", "nodes up", "unreachable", "hot nodes"):
        t.add_column(col, justify="right")
    hot = ", ".join(f"{m}: {len(ws)}" for m, ws in sorted(status.hot_nodes().items())) or "-"
    unreachable = status.unreachable
    t.add_row(*(f"{totals[k]:,}" for k in ("queued", "running", "done", "failed")),
              str(len(status.nodes) - len(unreachable)), str(len(unreachable)), hot)
    t.caption = "  ".join(f"{k}={v}" for k, v in coord.counters().items())
    return t


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "never"
    if isinstance(value, float):
        return f"{value:.3f}{unit}"
    return f"{value:,}{unit}"


def comparison_table(results: dict[str, Any]) -> Table:
    """The demo's table: one row per figure, events vs polling, and polling / events."""
    ev, po = results["events"], results["polling"]
    c = ev.config
    table = Table(title=f"HTC job status, {c.tasks:,} tasks on {c.workers} workers: events vs polling")
    table.add_column("figure")
    table.add_column("events", justify="right")
    table.add_column("polling", justify="right")
    table.add_column("polling/events", justify="right")
    rows: list[tuple[str, Any, Any]] = [
        ("time to accurate status, median (s)", ev.summary["status_s"], po.summary["status_s"]),
        ("time to accurate status, p95 (s)", ev.summary["status_p95_s"], po.summary["status_p95_s"]),
        ("exact status after last task (s)", ev.summary["final_status_s"], po.summary["final_status_s"]),
        ("staleness, median (s)", ev.summary["staleness_median_s"], po.summary["staleness_median_s"]),
        ("staleness, max (s)", ev.summary["staleness_max_s"], po.summary["staleness_max_s"]),
        ("changes not in status, median", int(ev.summary["unseen_median"]), int(po.summary["unseen_median"])),
        ("messages sent", ev.wire.messages, po.wire.messages),
        ("bytes sent", ev.wire.bytes, po.wire.bytes),
        ("coordinator CPU (s)", ev.coordinator_cpu_s, po.coordinator_cpu_s),
        ("job wall time (s)", ev.wall_s, po.wall_s),
    ]
    for name, a, b in rows:
        ratio = f"{b / a:.2f}x" if isinstance(a, (int, float)) and a and math.isfinite(a) and math.isfinite(b) else "-"
        table.add_row(name, _fmt(a), _fmt(b), ratio)
    table.add_row("status exact at end", _fmt(ev.exact), _fmt(po.exact), "")
    evc, poc = ev.counters, po.counters
    table.add_row("gaps found / polling rounds", f"{evc['gaps']} ({evc['snapshots']} snapshots)",
                  f"{poc['rounds']} (median {poc['round_ms_median']} ms)", "")
    how = {"each": "each change", "interval": f"every {c.worker.interval} s", "count": f"every {c.worker.count} changes",
           "assignment": "each finished assignment"}[c.worker.emit]
    table.caption = (f"events: emit={c.worker.emit} ({how}), heartbeat {c.worker.heartbeat} s, "
                     f"relays={c.relays}, loss={c.loss}; polling: one worker after another, a round every "
                     f"{c.poll_interval} s (back to back when a round takes longer)")
    return table


def htc(
    tasks: int = typer.Option(20_000, min=1, help="tasks in the job"),
    workers: int = typer.Option(50, min=1, help="simulated worker nodes"),
    task_time: float = typer.Option(0.1, min=0.0, help="mean task duration, seconds (time-compressed)"),
    slots: int = typer.Option(4, min=1, help="tasks a worker runs at once"),
    emit: str = typer.Option("each", help="events: each (a message per change, batched by the fabric client "
                             "when they pile up) | interval | count | assignment"),
    interval: float = typer.Option(0.1, min=0.001, help="events: seconds between a worker's task messages"),
    count: int = typer.Option(50, min=1, help="events, emit=count: changes per message"),
    poll_interval: float = typer.Option(-1.0, help="polling: seconds from round to round (default: --interval)"),
    relays: int = typer.Option(0, min=0, help="relays between workers and coordinator (batching)"),
    loss: float = typer.Option(0.0, min=0.0, max=0.99, help="fraction of event messages dropped on purpose"),
    fail_rate: float = typer.Option(0.01, min=0.0, max=1.0, help="fraction of tasks that fail"),
    processes: int = typer.Option(1, min=1, help="processes hosting the workers"),
    plot: Path = typer.Option(Path("htc_staleness.png"), help="where to save the staleness plot (PNG)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
    live: bool = typer.Option(True, help="show the coordinator's status while the job runs"),
    seed: int = typer.Option(1, help="random seed (durations, failures, losses)"),
) -> None:
    """Polling vs events for HTC job status (Nitro), on a broker evfabric starts itself."""
    from dataclasses import replace

    from evfabric.htc.compare import compare_on_embedded_broker, figures
    from evfabric.htc.config import JobConfig
    from evfabric.htc.plot import plot_staleness
    from evfabric.htc.worker import WorkerConfig

    try:
        wcfg = replace(WorkerConfig(), slots=slots, emit=emit, interval=interval, count=count)
        cfg = JobConfig(tasks=tasks, workers=workers, task_time=task_time, fail_rate=fail_rate, worker=wcfg,
                        relays=relays, loss=loss, poll_interval=interval if poll_interval < 0 else poll_interval,
                        seed=seed)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(stderr=as_json)
    show = live and not as_json and console.is_terminal
    began = time.time()
    holder: dict[str, Any] = {}

    def on_start(approach: str) -> Any:
        if not as_json:
            console.print(f"[bold]{approach}[/bold]: {tasks:,} tasks on {workers} workers ...")
        if not show:
            return None
        if "live" in holder:
            holder["live"].stop()
        started = time.time()
        holder["live"] = live_view = Live(console=console, auto_refresh=False)
        live_view.start()
        return lambda coord: live_view.update(_status_table(coord, started), refresh=True)

    results = compare_on_embedded_broker(cfg, processes=processes, on_start=on_start)
    if "live" in holder:
        holder["live"].stop()
    saved = plot_staleness(results, plot)
    elapsed = time.time() - began
    if as_json:
        out = {
            "demo": "htc",
            "tasks": tasks,
            "workers": workers,
            "figures": [f.as_dict() for f in figures(results)],
            "runs": {name: r.figures() for name, r in results.items()},
            "plot": str(saved),
            "elapsed_s": round(elapsed, 1),
        }
        print(json.dumps(out))
        return
    console.print(comparison_table(results))
    console.print(f"staleness plot: {saved}    (whole demo: {elapsed:.0f} s, broker started and stopped by evfabric)")


def register(app: typer.Typer) -> None:
    from evfabric.cli.demo import demo_app

    demo_app.command("htc")(htc)
