"""``evfabric demo``: a short, real scenario on the embedded default (no server needed).

A toy solver publishes iteration and convergence events; a monitor, a logger with a wildcard, a
CEL-filtered alarm and a framework-event watcher react. It runs once with synchronous dispatch
(``process_events()``) and once with the thread pool, then shows a circular buffer dropping the
oldest events, and prints what happened. Other demos (``evfabric demo htc``...) are
sub-commands of the ``demo_app`` group defined here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import typer
from rich.console import Console
from rich.table import Table

from evfabric.core.event import Event
from evfabric.local.service import EventService

demo_app = typer.Typer(help="Run a demo scenario; without a sub-command, the in-process tour.")


def _solver(svc: EventService, steps: int) -> None:
    """A pretend iterative solver: residual decays, with a spike the alarm should catch."""
    residual = 1.0
    for i in range(steps):
        residual *= 0.7
        if i == steps // 2:
            residual *= 50  # a divergence spike
        svc.publish("solver.signals.iteration", {"i": i, "residual": residual})
        if i % 5 == 4:
            svc.publish("solver.signals.checkpoint.written", {"i": i, "bytes": 1 << 20})
    svc.publish("solver.signals.done", {"iterations": steps, "residual": residual})


def _wire(svc: EventService) -> dict[str, list[Event]]:
    """Subscribe the reacting components; return what each one saw."""
    seen: dict[str, list[Event]] = {"monitor": [], "logger": [], "alarm": [], "framework": []}
    lock = threading.Lock()

    def keep(name: str):
        def listener(event: Event) -> None:
            with lock:
                seen[name].append(event)

        return listener

    svc.subscribe("solver.signals.?", listener=keep("monitor"))  # one segment: iteration, done
    svc.subscribe("*.signals.*", listener=keep("logger"))  # any depth, any component
    svc.subscribe("solver.signals.iteration", filter="body.residual > 0.5 && body.i > 0", listener=keep("alarm"))
    svc.subscribe("cca.*", listener=keep("framework"))
    return seen


def _run_mode(mode: str, steps: int) -> tuple[dict[str, list[Event]], float, EventService]:
    svc = EventService(source="demo-solver", mode=mode)  # type: ignore[arg-type]
    seen = _wire(svc)
    t0 = time.perf_counter()
    _solver(svc, steps)
    calls = svc.process_events(timeout=10)
    elapsed = time.perf_counter() - t0
    if mode == "sync":
        assert calls > 0
    svc.close()
    return seen, elapsed, svc


def _summary(console: Console, mode: str, seen: dict[str, list[Event]], elapsed: float, svc: EventService) -> None:
    table = Table(title=f"{mode} dispatch: {svc.stats.published} events published in {elapsed * 1e3:.1f} ms")
    table.add_column("component")
    table.add_column("subscription")
    table.add_column("events", justify="right")
    table.add_column("topics seen")
    patterns = {
        "monitor": "solver.signals.?",
        "logger": "*.signals.*",
        "alarm": "solver.signals.iteration if body.residual > 0.5",
        "framework": "cca.*",
    }
    for name, events in seen.items():
        topics = Counter(e.topic for e in events)
        shown = ", ".join(f"{t} x{n}" for t, n in sorted(topics.items()))
        table.add_row(name, patterns[name], str(len(events)), shown)
    console.print(table)
    alarms = seen["alarm"]
    if alarms:
        a = alarms[0]
        console.print(f"  alarm: iteration {a.body['i']} residual {a.body['residual']:.3g} (event {a.id}, seq {a.seq})")


def _circular_buffer(console: Console) -> None:
    svc = EventService(source="demo-sensor", queue_size=8, overflow="drop_oldest")
    got: list[Event] = []
    drops: list[Event] = []
    svc.subscribe("lab.sensor.temperature", listener=got.append)
    svc.subscribe("cca.events.dropped", listener=drops.append)
    for i in range(20):
        svc.publish("lab.sensor.temperature", {"i": i, "celsius": 20 + 5 * math.sin(i / 3)})
    svc.process_events()
    kept = [e.body["i"] for e in got]
    console.print(
        f"circular buffer (queue_size=8, drop_oldest): published 20, delivered {kept}, "
        f"dropped {svc.stats.dropped}; cca.events.dropped said {drops[0].body if drops else None}"
    )


@demo_app.callback(invoke_without_command=True)
def demo(ctx: typer.Context, steps: int = typer.Option(20, min=2, help="solver iterations")) -> None:
    """Topics, wildcards, listeners, a CEL filter, framework events, both dispatch modes."""
    if ctx.invoked_subcommand is not None:
        return
    console = Console()
    console.rule("evfabric demo: the in-process event service")
    for mode in ("sync", "threads"):
        seen, elapsed, svc = _run_mode(mode, steps)
        _summary(console, mode, seen, elapsed, svc)
    _circular_buffer(console)
    console.print("[green]done[/green]: the same publish/subscribe model runs over a broker with evfabric.connect(url)")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
