"""``evfabric serve``: run a broker (one server, a local cluster, or an edge leaf) in the foreground.

Ctrl-C (or SIGTERM) stops it cleanly. The services that run beside the broker (the web API,
the dashboard) are found by import: each module in :data:`SERVICE_MODULES` that exists and
defines ``start_with_broker(broker_url: str, *, monitor_url: str) -> Callable[[], None]`` is
started after the broker (the returned callable stops it), unless ``--no-web`` is given.
"""

from __future__ import annotations

import importlib
import inspect
import importlib.util
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from evfabric.core.errors import BrokerUnavailable, ConfigError
from evfabric.fabric.cluster import BrokerCluster
from evfabric.fabric.server import BrokerServer
from evfabric.fabric.server_config import ClusterSettings, ServerSettings

#: Modules that may provide a service started with ``evfabric serve`` (see module docstring).
SERVICE_MODULES: list[str] = ["evfabric.access.web", "evfabric.web", "evfabric.monitor.web", "evfabric.triggers.service"]

DEFAULT_DATA_DIR = Path(".evfabric") / "broker"


def _services(console: Console) -> list[tuple[str, Callable[..., Callable[[], None]]]]:
    found = []
    for name in SERVICE_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        module = importlib.import_module(name)
        start = getattr(module, "start_with_broker", None)
        if callable(start):
            found.append((name, start))
    if not found:
        console.print("[dim]no web service available yet; running the broker only[/dim]")
    return found


def _settings(
    data_dir: Path,
    host: str,
    port: int,
    http_port: int,
    name: str | None,
    cluster: str | None,
    routes: list[str],
    cluster_port: int,
    leaf: list[str],
    leafnode_port: int | None,
    domain: str | None,
) -> ServerSettings:
    if routes and not cluster:
        raise ConfigError("--routes: give the cluster a name with --cluster")
    if leaf and not domain:
        domain = "edge"  # a leaf needs its own JetStream domain to keep working alone
    cl = ClusterSettings(name=cluster, host=host, port=cluster_port, routes=routes) if cluster else None
    if cl is not None and not name:
        name = socket.gethostname().split(".")[0].replace(".", "-") + f"-{port or 'auto'}"
    return ServerSettings(
        data_dir=data_dir,
        host=host,
        port=port,
        http_port=http_port,
        server_name=name,
        domain=domain,
        cluster=cl,
        leafnode_port=leafnode_port,
        leaf_remotes=leaf,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Signals:
    """SIGTERM and SIGINT raise KeyboardInterrupt (SIGINT too: a shell may start us with it
    ignored); :meth:`ignore` during shutdown, so a second signal cannot cut it short and leave
    servers behind; :meth:`restore` puts the previous handlers back."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.saved = {sig: signal.signal(sig, _interrupt) for sig in self.SIGNALS}

    def ignore(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _wait_foreground(servers: list[BrokerServer], console: Console) -> int:
    """Sleep until KeyboardInterrupt (returns 0) or a server dies on its own (returns 1)."""
    try:
        while True:
            for s in servers:
                if not s.running:
                    console.print(f"[red]server {s.name} exited unexpectedly[/red]; log tail:\n{s.log_tail(20)}")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def _run(servers: list[BrokerServer], start: Callable[[], object], web: bool, console: Console) -> int:
    """Start, announce, wait, and always stop what was started; returns the exit code."""
    signals = _Signals()  # before starting, so an early SIGTERM also stops cleanly
    stops: list[Callable[[], None]] = []
    code = 0
    try:
        console.print(f"starting {len(servers)} nats-server{'s' if len(servers) > 1 else ''} ...")
        start()
        for s in servers:
            console.print(f"[green]broker ready[/green] [bold]{s.url}[/bold]  monitor {s.monitor_url}  data {s.data_dir}")
            if s.leafnode_url:
                console.print(f"  leaf nodes connect to {s.leafnode_url}")
            if s.settings.leaf_remotes:
                console.print(f"  leaf of {', '.join(s.settings.leaf_remotes)} (JetStream domain {s.settings.domain})")
        if len(servers) > 1:
            console.print(f"cluster URLs: [bold]{','.join(s.url for s in servers)}[/bold]")
        if web:
            # with access control on, the services connect as evfabric-serve (credentials in the URL)
            from evfabric.access.internal import service_url

            url = service_url(servers[0].url, servers[0].data_dir)
            for mod, start_service in _services(console):
                # a service that asks for the servers (access control reloads them) gets them
                extra = {"servers": servers} if "servers" in inspect.signature(start_service).parameters else {}
                stops.append(start_service(url, monitor_url=servers[0].monitor_url, **extra))
                console.print(f"started {mod}")
        console.print("[dim]Ctrl-C to stop[/dim]")
        code = _wait_foreground(servers, console)
    except KeyboardInterrupt:
        code = 0
    except (ConfigError, BrokerUnavailable) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        code = 2
    finally:
        signals.ignore()
        try:
            console.print("stopping ...")
            for stop in reversed(stops):
                stop()
            for s in servers:
                s.stop()
        finally:
            signals.restore()
    console.print("stopped")
    return code


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        port: int = typer.Option(4222, "--port", "-p", help="client port (0 = pick a free one)"),
        http_port: int = typer.Option(8222, "--http-port", help="monitoring port (/varz, /jsz, /healthz)"),
        host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 for all)"),
        data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", "-d", help="config, log and JetStream store"),
        name: str | None = typer.Option(None, "--name", help="server name (needed in a cluster)"),
        cluster: str | None = typer.Option(None, "--cluster", help="join the cluster of this name"),
        routes: list[str] = typer.Option([], "--routes", help="nats-route://host:port of a peer (repeat)"),
        cluster_port: int = typer.Option(6222, "--cluster-port", help="route port when in a cluster"),
        peers: int = typer.Option(
            0, "--peers", help="run a local cluster of N servers (ports port+i, http-port+i, cluster-port+i)"
        ),
        leaf: list[str] = typer.Option([], "--leaf", help="hub leaf-node URL to connect to (repeat)"),
        leafnode_port: int | None = typer.Option(None, "--leafnode-port", help="accept leaf nodes on this port"),
        domain: str | None = typer.Option(None, "--domain", help="JetStream domain (default 'edge' with --leaf)"),
        config_only: bool = typer.Option(False, "--config-only", help="write and print the config, do not start"),
        web: bool = typer.Option(True, "--web/--no-web", help="also start the web service, if installed"),
    ) -> None:
        """Run a NATS broker with JetStream in the foreground; Ctrl-C stops it cleanly."""
        console = Console()
        try:
            if peers:
                if peers < 1 or routes or leaf:
                    raise ConfigError("--peers: a positive N, not combined with --routes or --leaf")
                # member i listens on port+i, http_port+i, cluster_port+i (0 = free ports)
                group = BrokerCluster(
                    peers, base_dir=data_dir, name=cluster or "evfabric", host=host,
                    client_port=port, http_port=http_port, route_port=cluster_port,
                )
                servers = group.servers
            else:
                settings = _settings(
                    data_dir, host, port, http_port, name, cluster, routes, cluster_port, leaf, leafnode_port, domain
                )
                servers = [BrokerServer(settings)]
            if config_only:
                for s in servers:
                    path = s.write_config()
                    console.print(f"[bold]# {path}[/bold]")
                    console.print(path.read_text(), markup=False, highlight=False)
                return
        except (ConfigError, BrokerUnavailable) as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        start = group.start if peers else servers[0].start
        raise typer.Exit(_run(servers, start, web, console))


__all__ = ["register", "SERVICE_MODULES"]
