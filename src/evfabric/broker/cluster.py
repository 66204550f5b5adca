"""``BrokerCluster``: N ``nats-server`` processes routed into one cluster, JetStream clustered.

Every member listens for routes on its own port and solicits routes to all the others; each has
a ``server_name`` (``n1``, ``n2``...) and the same cluster name, so JetStream runs its RAFT
meta group over them and streams can have up to N replicas. With N=3 and an R3 stream, the loss
of any one server keeps the stream writable and loses no acknowledged message (a publish is
acknowledged once a majority has stored it).

    with BrokerCluster(3) as cl:
        nc = await nats.connect(cl.urls)
        cl.kill(0); ...; cl.restart(0)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from evfabric.broker.config import ClusterSettings, ServerSettings, free_port, secret_file
from evfabric.broker.server import AccessGuard, BrokerServer
from evfabric.core.errors import BrokerUnavailable, ConfigError

#: The shared route secret of a cluster's members, in its base directory (mode 0600).
ROUTE_SECRET_FILE = "cluster.secret"


class BrokerCluster:
    """``n`` clustered JetStream servers on ``host`` (loopback by default) under ``base_dir``.

    ``base_dir=None`` uses a temporary directory that :meth:`close` removes. Ports are chosen
    once and kept across member restarts: free ports by default, or consecutive ports from
    ``client_port`` / ``http_port`` / ``route_port`` (member i gets base + i) when given.
    ``extra_config`` is merged into every member's config.

    Routes authenticate with a secret kept in ``<base_dir>/cluster.secret`` (0600, made once):
    a server that does not know it cannot join and read or inject traffic. ``access``: one
    access control (e.g. ``AccessControl(store)``) enforced on every member from its first start.
    """

    def __init__(
        self,
        n: int = 3,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        name: str = "evfabric",
        host: str = "127.0.0.1",
        extra_config: dict[str, Any] | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 45.0,
        client_port: int = 0,
        http_port: int = 0,
        route_port: int = 0,
        access: AccessGuard | None = None,
    ) -> None:
        if n < 1:
            raise ConfigError(f"n: a cluster needs at least one server, got {n}")
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="evfabric-cluster-"))
        self.name = name
        self.startup_timeout = startup_timeout
        route_ports = [route_port + i if route_port else free_port(host) for i in range(n)]
        routes = [f"nats-route://{host}:{p}" for p in route_ports]
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = secret_file(self.base_dir / ROUTE_SECRET_FILE)
        self.servers: list[BrokerServer] = []
        for i in range(n):
            settings = ServerSettings(
                data_dir=self.base_dir / f"n{i + 1}",
                host=host,
                port=client_port + i if client_port else 0,
                http_port=http_port + i if http_port else 0,
                server_name=f"n{i + 1}",
                cluster=ClusterSettings(name=name, host=host, port=route_ports[i], routes=[
                    r for j, r in enumerate(routes) if j != i
                ], secret=secret),
                extra=dict(extra_config or {}),
            )
            self.servers.append(BrokerServer(settings, binary=binary, startup_timeout=startup_timeout, access=access))

    @property
    def urls(self) -> list[str]:
        """Client URLs of all members (give the whole list to a client for fail-over)."""
        return [s.url for s in self.servers]

    @property
    def url(self) -> str:
        """All client URLs joined by commas (the form ``nats-server`` and many tools accept)."""
        return ",".join(self.urls)

    def __len__(self) -> int:
        return len(self.servers)

    def __getitem__(self, i: int) -> BrokerServer:
        return self.servers[i]

    def start(self, timeout: float | None = None) -> BrokerCluster:
        """Start every member, then wait until each is healthy and sees a JetStream meta leader."""
        for s in self.servers:
            s.launch()
        try:
            self.wait_ready(timeout)
        except BrokerUnavailable:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float | None = None) -> BrokerCluster:
        """Block until every running member is healthy and agrees on a meta leader."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        for s in self.servers:
            if s.running:
                s.wait_ready(max(0.1, deadline - time.monotonic()))
        return self

    def meta_leader(self) -> str | None:
        """Name of the JetStream meta leader, as seen by the first running member."""
        for s in self.servers:
            if s.running:
                return s.meta_leader()
        return None

    def kill(self, i: int) -> BrokerServer:
        """``kill -9`` member ``i``; returns it."""
        self.servers[i].kill()
        return self.servers[i]

    def restart(self, i: int, timeout: float | None = None) -> BrokerServer:
        """Restart member ``i`` (same ports and store) and wait until it is back in the cluster."""
        return self.servers[i].restart(timeout if timeout is not None else self.startup_timeout)

    def stop(self) -> None:
        """Stop every member (SIGTERM, then kill after a timeout)."""
        for s in self.servers:
            s.stop()

    def close(self) -> None:
        """Stop every member and remove the temporary directory, if this object made it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> BrokerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        up = sum(s.running for s in self.servers)
        return f"<BrokerCluster {self.name} {up}/{len(self.servers)} running {self.urls}>"
