"""``evfabric top``: the monitoring dashboard in the terminal (rich ``Live``), or one snapshot.

It reads the broker's monitoring endpoint directly (no web service needed): ``--monitor-url``
(default: port 8222 of ``--url``'s host), and taps traffic through ``--url`` for events per topic
unless ``--no-tap``.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from evfabric.cli._common import CONTEXT, TOKEN, die, resolve
from evfabric.core.errors import EvfabricError
from evfabric.monitor.collector import Monitor

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 30) -> str:
    """Unicode block sparkline of the last ``width`` values (scaled to their maximum)."""
    vals = values[-width:]
    top = max(vals, default=0.0)
    if top <= 0:
        return _BARS[0] * len(vals)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] for v in vals)


def _num(x: float) -> str:
    a = abs(x)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= scale * 10:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _opt(x: float | None) -> str:
    """An event figure, '-' when unknown (no tap)."""
    return "-" if x is None else _num(x)


def render_snapshot(snap: dict[str, Any]) -> Group:
    """The snapshot as rich renderables: header, topics, consumers, triggers."""
    srv = snap["server"]
    health = ("[bold green]healthy[/]" if srv["healthy"] else "[bold red]unhealthy[/]") if srv["up"] else "[bold red]DOWN[/]"
    head = Text.from_markup(
        f"[bold]evfabric top[/]  {snap['monitor_url']}  {health}  server {srv.get('name') or '-'} "
        f"v{srv.get('version') or '-'}  up {srv.get('uptime') or '-'}  connections {srv['connections']}  "
        f"in {_num(srv['rates']['in_msgs'])} msg/s  out {_num(srv['rates']['out_msgs'])} msg/s"
    )
    hist = snap.get("history", {}).get("topics", {})
    topics = Table(title="topics", expand=True)
    for col in ("topic", "kind", "events in/s", "msgs in/s", "bytes in/s", "msgs out/s", "stored events",
                "stored msgs", "lag events", "lag msgs", "in rate"):
        topics.add_column(col, justify="left" if col in ("topic", "kind", "in rate") else "right")
    for t in snap["topics"]:
        r = t["rates"]
        be = t["kind"] == "best_effort"
        series = hist.get(t["topic"], {}).get("published_events_rate" if snap["tap"] else "messages_in_rate", [])
        topics.add_row(t["topic"], t["kind"], _num(r["published_events"]) if snap["tap"] else "-",
                       _num(r["published_messages"] if be else r["messages_in"]),
                       _num(r["published_bytes"] if be else r["bytes_in"]), _num(r["messages_out"]),
                       _opt(t.get("stored_events")), _num(t["stored_messages"]), _opt(t.get("lag_events")),
                       _num(t["lag"]), sparkline(series))
    consumers = Table(title="consumers", expand=True)
    for col in ("topic", "consumer", "pending msgs", "ack pending msgs", "redelivered msgs", "lag events",
                "lag msgs"):
        consumers.add_column(col, justify="left" if col in ("topic", "consumer") else "right")
    for c in snap["consumers"]:
        consumers.add_row(c["topic"], c["consumer"], _num(c["pending"]), _num(c["ack_pending"]),
                          _num(c["redelivered"]), _opt(c.get("lag_events")), _num(c["lag"]))
    triggers = Table(title="triggers", expand=True)
    for col in ("trigger", "ok", "failed", "retried", "dead-lettered"):
        triggers.add_column(col, justify="left" if col == "trigger" else "right")
    for t in snap["triggers"]:
        triggers.add_row(t["trigger"], _num(t["ok"]), _num(t["failed"]), _num(t["retried"]), _num(t["dead_lettered"]))
    d = snap["drops"]
    drops = Text(f"drops: slow consumers {d['slow_consumers']}, removed by retention {d['removed_by_retention']}, "
                 f"tap dropped {d['tap_dropped']}, client-reported {sum(c['events'] for c in d['client'])}")
    return Group(head, topics, consumers, triggers, drops)


def default_monitor_url(url: str) -> str:
    """``http://<host of url>:8222``, the NATS default monitoring port."""
    return f"http://{urlsplit(url).hostname or '127.0.0.1'}:8222"


def listening(url: str) -> bool:
    """Whether anything accepts a TCP connection at ``url``'s host and port (one second at most)."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=1).close()
    except OSError:
        return False
    return True


def other_server(monitor_url: str, url: str) -> int | None:
    """The client port of the server answering at ``monitor_url`` when it is not ``url``'s
    (another broker on the default monitoring port); None when it is, or nobody answers."""
    try:
        with urllib.request.urlopen(f"{monitor_url}/varz", timeout=2) as resp:
            port = json.load(resp).get("port")
    except (OSError, ValueError):
        return None
    wanted = urlsplit(url).port or 4222
    return port if isinstance(port, int) and port != wanted else None


HELP = """Live view of the broker: topics with rates, consumer lag, triggers, drops, health.

Examples:

    evfabric top                                      # the broker on 127.0.0.1:4222 (monitor :8222)
    evfabric top --url nats://lab1:4222 --token "$ROOT_TOKEN" --once
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def top(
        url: str = typer.Option(None, "--url", "-u", help="the broker's NATS URL (for the traffic tap; env EVFABRIC_URL)"),
        monitor_url: str = typer.Option("", "--monitor-url", help="the broker's HTTP monitoring URL (default: port 8222 of --url's host)"),
        once: bool = typer.Option(False, "--once", help="print one snapshot and exit"),
        interval: float = typer.Option(1.0, "--interval", min=0.1, help="seconds between samples"),
        tap: bool = typer.Option(True, "--tap/--no-tap", help="count published events per topic by listening to the traffic"),
        token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        target = resolve(url, token, context)
        try:
            tap_url = target.url_with_token() if tap else None
        except EvfabricError as exc:  # a malformed token
            raise die(exc) from None
        if not monitor_url:
            monitor_url = default_monitor_url(target.url)
            if not listening(target.url):
                raise die(f"no broker answers at {target.url}: start one with `evfabric serve`, or give --url "
                          "(or --monitor-url)")
            port = other_server(monitor_url, target.url)
            if port is not None:
                raise die(f"the broker at {monitor_url} serves clients on port {port}, not {target.url}: "
                          "give its monitoring URL with --monitor-url")
        monitor = Monitor(monitor_url, tap_url, interval=interval)
        console = Console()
        try:
            first = monitor.sample()
            if monitor.tap_refused is not None:
                raise die(f"{monitor.tap_refused} (or run top with --no-tap)")
            if not first["server"]["up"]:  # nothing to watch: say so in one line, do not draw an empty screen
                raise die(f"no broker answers at {monitor.monitor_url} (the monitoring port of {target.url}); "
                          "start one with `evfabric serve` or give --monitor-url")
            if once:
                # Two samples a moment apart, so rates mean something.
                monitor.sample()
                time.sleep(min(interval, 0.5))
                monitor.sample()
                console.print(render_snapshot(monitor.snapshot()))
                return
            with Live(render_snapshot(monitor.snapshot()), console=console, refresh_per_second=4, screen=False) as live:
                while True:
                    time.sleep(interval)
                    monitor.sample()
                    live.update(render_snapshot(monitor.snapshot(300)))
        except KeyboardInterrupt:
            pass
        finally:
            monitor.close()
