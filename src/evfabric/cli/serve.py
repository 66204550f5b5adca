"""``evfabric serve``: run a broker (one server, a local cluster, or an edge leaf) in the foreground.

Ctrl-C (or SIGTERM) stops it cleanly. The services that run beside the broker (the web API,
the dashboard) are found by import: each module in :data:`SERVICE_MODULES` that exists and
defines ``start_with_broker(broker_url: str, *, monitor_url: str) -> Callable[[], None]`` is
started after the broker (the returned callable stops it), unless ``--no-web`` is given; those in
:data:`BROKER_SERVICES` (the ``max_events`` trimmer) always are.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from evfabric.broker.cluster import ROUTE_SECRET_FILE, BrokerCluster
from evfabric.broker.config import ClusterSettings, ServerSettings, redact_url, secret_file
from evfabric.broker.server import AccessGuard, BrokerServer
from evfabric.core.errors import BrokerUnavailable, ConfigError

#: Modules that may provide a service started with ``evfabric serve`` (see module docstring).
SERVICE_MODULES: list[str] = ["evfabric.access.web", "evfabric.web", "evfabric.monitor.web", "evfabric.triggers.service"]
#: Services started even with ``--no-web`` (same protocol): the ``max_events`` trimmer.
BROKER_SERVICES: list[str] = ["evfabric.fabric.retention"]

DEFAULT_DATA_DIR = Path(".evfabric") / "broker"
#: The secret leaf nodes present to a hub with access control (in the hub's data directory, 0600).
LEAF_SECRET_FILE = "leaf.secret"


def _access(data_dir: Path) -> AccessGuard | None:
    """The access control for the store in ``data_dir`` when it holds identities, else None
    (explicit: nothing is enforced as a side effect of importing a module)."""
    from evfabric.access.internal import access_enabled

    if not access_enabled(data_dir):
        return None
    from evfabric.access.control import AccessControl

    return AccessControl.for_dir(data_dir)


def _services(console: Console, names: list[str] | None = None) -> list[tuple[str, Callable[..., Callable[[], None]]]]:
    found = []
    for name in SERVICE_MODULES if names is None else names:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        module = importlib.import_module(name)
        start = getattr(module, "start_with_broker", None)
        if callable(start):
            found.append((name, start))
    if not found and names is None:
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
    mqtt_port: int | None = None,
    guarded: bool = False,
    tls: tuple[Path | None, Path | None] = (None, None),
    tls_ca: Path | None = None,
    leaf_ca: Path | None = None,
) -> ServerSettings:
    if routes and not cluster:
        raise ConfigError("--routes: give the cluster a name with --cluster")
    if leaf and not domain:
        domain = "edge"  # a leaf needs its own JetStream domain to keep working alone
    # routes always authenticate: every member needs the same <data-dir>/cluster.secret (copy it)
    secret = secret_file(data_dir / ROUTE_SECRET_FILE) if cluster else None
    cl = ClusterSettings(name=cluster, host=host, port=cluster_port, routes=routes, secret=secret) if cluster else None
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
        # a hub with access control accepts only leaf nodes that know <data-dir>/leaf.secret
        leaf_secret=secret_file(data_dir / LEAF_SECRET_FILE) if guarded and leafnode_port is not None else None,
        tls_cert=tls[0],
        tls_key=tls[1],
        tls_ca=tls_ca,
        leaf_ca=leaf_ca,
        mqtt_port=mqtt_port,
    )


def _redact_config(text: str, settings: ServerSettings) -> str:
    """The config ``text`` with the route and leaf secrets and any URL passwords replaced by ``***``."""
    from urllib.parse import quote, urlsplit

    secrets = [settings.leaf_secret, settings.cluster.secret if settings.cluster else None]
    for url in settings.leaf_remotes:
        try:
            secrets.append(urlsplit(url).password)
        except ValueError:
            continue
    for secret in filter(None, secrets):
        text = text.replace(quote(secret, safe=""), "***").replace(secret, "***")
    return text


def essential(message: str) -> str:
    """A start-up failure in one line: the first line of ``message`` without the log dump, plus
    the server's fatal or error log lines (e.g. ``Error listening on port: ... address already in
    use``) and where the full log is."""
    head, _, log = message.partition("\n")
    found = [line.split("] ", 2)[-1].strip() for line in log.splitlines() if "[FTL]" in line or "[ERR]" in line]
    first, _, logged = head.partition("; log ")
    where = f" (full log: {logged.rstrip(':')})" if logged else ""
    return first + (": " + "; ".join(dict.fromkeys(found)) if found else "") + where


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Signals:
    """SIGTERM and SIGINT raise KeyboardInterrupt (SIGINT too: a shell may start us with it
    ignored); :meth:`ignore` during shutdown, so a second signal cannot cut it short and leave
    servers behind; :meth:`restore` puts the previous handlers back."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: the terminal closed, ssh dropped

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


def _run(servers: list[BrokerServer], start: Callable[[], object], web: bool, console: Console,
         store_dir: Path | None = None) -> int:
    """Start, announce, wait, and always stop what was started; returns the exit code."""
    signals = _Signals()  # before starting, so an early SIGTERM also stops cleanly
    stops: list[Callable[[], None]] = []
    code = 0
    try:
        console.print(f"starting {len(servers)} nats-server{'s' if len(servers) > 1 else ''} ...")
        start()
        store_dir = store_dir or servers[0].data_dir
        for s in servers:
            console.print(f"[green]broker ready[/green] [bold]{s.url}[/bold]  monitor {s.monitor_url}  data {s.data_dir}")
            if s.access is not None:
                console.print(f"  access control on (store {store_dir})")
            if s.settings.tls_cert is not None:
                console.print(f"  clients must use TLS (certificate {s.settings.tls_cert})")
            if s.leafnode_url:
                where = f" with the secret in {s.data_dir / LEAF_SECRET_FILE}" if s.settings.leaf_secret else ""
                console.print(f"  leaf nodes connect to {s.leafnode_url}{where}")
            if s.settings.mqtt_port is not None:
                console.print(f"  MQTT clients connect to mqtt://{s.settings.host}:{s.settings.mqtt_port} (topic a/b = a.b)")
            if s.settings.leaf_remotes:
                remotes = ", ".join(redact_url(u) for u in s.settings.leaf_remotes)
                console.print(f"  leaf of {remotes} (JetStream domain {s.settings.domain})")
        if len(servers) > 1:
            console.print(f"cluster URLs: [bold]{','.join(s.url for s in servers)}[/bold]")
        # with access control on, the services connect as evfabric-serve (credentials in the URL)
        from evfabric.access.internal import service_url

        url = service_url(servers[0].url, store_dir)
        for mod, start_service in _services(console, BROKER_SERVICES) + (_services(console) if web else []):
            # the services learn where the store is; the servers' access control is already attached
            params = inspect.signature(start_service).parameters
            extra: dict[str, object] = {}
            if "data_dir" in params:
                extra["data_dir"] = store_dir
            if "servers" in params:
                extra["servers"] = servers
            stops.append(start_service(url, monitor_url=servers[0].monitor_url, **extra))
            console.print(f"started {mod}")
        console.print("[dim]Ctrl-C to stop[/dim]")
        code = _wait_foreground(servers, console)
    except KeyboardInterrupt:
        code = 0
    except (ConfigError, BrokerUnavailable) as exc:
        console.print(f"[red]error:[/red] {essential(str(exc))}", highlight=False, soft_wrap=True)
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
        tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate: clients must use TLS"),
        tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert"),
        tls_ca: Path | None = typer.Option(
            None, "--tls-ca", help="PEM authority of the cluster members' certificates (default: --tls-cert itself)"),
        leaf_ca: Path | None = typer.Option(
            None, "--leaf-ca", help="PEM authority of the --leaf hub's certificate: the link is TLS, verified"),
        mqtt: int | None = typer.Option(None, "--mqtt", help="accept MQTT clients on this port (0 = pick a free one)"),
    ) -> None:
        """Run a NATS broker with JetStream in the foreground; Ctrl-C stops it cleanly.

        Access control is on when the data directory's access store holds an identity
        (``evfabric user create``): every member of ``--peers N`` enforces that one store.
        """
        console = Console()
        try:
            if (tls_cert is None) != (tls_key is None):
                raise ConfigError("--tls-cert and --tls-key go together")
            access = _access(data_dir)
            if peers:
                if peers < 1 or routes or leaf or mqtt is not None:
                    raise ConfigError("--peers: a positive N, not combined with --routes, --leaf or --mqtt")
                # member i listens on port+i, http_port+i, cluster_port+i (0 = free ports)
                group = BrokerCluster(
                    peers, base_dir=data_dir, name=cluster or "evfabric", host=host,
                    client_port=port, http_port=http_port, route_port=cluster_port, access=access,
                )
                servers = group.servers
                for s in servers:
                    s.settings.tls_cert, s.settings.tls_key, s.settings.tls_ca = tls_cert, tls_key, tls_ca
            else:
                settings = _settings(
                    data_dir, host, port, http_port, name, cluster, routes, cluster_port, leaf, leafnode_port, domain,
                    mqtt, guarded=access is not None, tls=(tls_cert, tls_key), tls_ca=tls_ca, leaf_ca=leaf_ca,
                )
                servers = [BrokerServer(settings, access=access)]
            if config_only:
                for s in servers:
                    path = s.write_config()
                    console.print(f"[bold]# {path}[/bold] (secrets shown as ***)")
                    console.print(_redact_config(path.read_text(), s.settings), markup=False, highlight=False)
                return
        except (ConfigError, BrokerUnavailable) as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        for s in servers:
            s.die_with_parent = True  # no orphan nats-server if serve is killed (-9) or loses its terminal
        start = group.start if peers else servers[0].start
        raise typer.Exit(_run(servers, start, web, console, store_dir=data_dir))


__all__ = ["SERVICE_MODULES", "register"]
