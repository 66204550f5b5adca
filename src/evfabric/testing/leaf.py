"""A hub and a leaf server joined through a relay that can cut the link (test tooling).

The *hub* listens for leaf-node connections; the *leaf* (edge site) connects to it and has its
own JetStream **domain**, so its streams live on the edge: local producers and consumers keep
publishing and reading while the link is down. To bring edge events to the hub, a stream on the
hub *sources* from the edge stream across domains (:func:`evfabric.fabric.edge.edge_source`);
JetStream's sourcing resumes where it stopped once the link is back, so what was published at
the edge meanwhile reaches the hub (at least once; de-duplicate by ``Nats-Msg-Id``).

    with HubAndLeaf() as (hub, leaf):       # pair.cut() / pair.heal() simulate an outage
        # on the leaf:  add_stream(name="EDGE", subjects=["site.>"])
        # on the hub:   add_stream(name="FROM_EDGE", sources=[edge_source("EDGE", leaf_domain)])
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from evfabric.broker.server import BrokerServer
from evfabric.core.errors import BrokerUnavailable
from evfabric.testing.relay import TcpRelay

__all__ = ["HubAndLeaf"]


class HubAndLeaf:
    """A hub server (JetStream domain ``hub_domain``, listening for leaf nodes) and one leaf
    server (domain ``leaf_domain``) connected to it, on loopback, under ``base_dir``.

    The leaf reaches the hub through a :class:`TcpRelay`, so :meth:`cut` takes the link down
    while both servers keep running, and :meth:`heal` brings it back (the leaf reconnects
    within about a second). Stopping or restarting the hub (same ports and store) also works.
    """

    def __init__(
        self,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        hub_domain: str = "hub",
        leaf_domain: str = "edge",
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="evfabric-leaf-"))
        self.hub_domain = hub_domain
        self.leaf_domain = leaf_domain
        self.hub = BrokerServer(
            data_dir=self.base_dir / "hub",
            server_name="hub",
            domain=hub_domain,
            leafnode_port=0,
            # else the hub tells the leaf its real leafnode address, and the leaf would
            # reconnect around the relay
            extra_config={"leafnodes": {"no_advertise": True}},
            binary=binary,
        )
        self._binary = binary
        self.leaf: BrokerServer | None = None
        self.relay: TcpRelay | None = None

    def start(self) -> HubAndLeaf:
        """Start the hub, the relay, then the leaf connected through it; wait until both servers
        are ready (the leaf-node link itself comes up about a second later; see
        :meth:`wait_connected`)."""
        self.hub.start()
        if self.relay is None:
            self.relay = TcpRelay(("127.0.0.1", int(self.hub.settings.leafnode_port or 0)))
        if self.leaf is None:
            self.leaf = BrokerServer(
                data_dir=self.base_dir / "leaf",
                server_name="leaf",
                domain=self.leaf_domain,
                leaf_of=f"nats-leaf://127.0.0.1:{self.relay.port}",
                binary=self._binary,
            )
        self.leaf.start()
        return self

    def cut(self) -> None:
        """Take the hub-leaf link down; both servers keep running."""
        assert self.relay is not None, "start() first"
        self.relay.cut()

    def heal(self) -> None:
        """Let the leaf reconnect to the hub."""
        assert self.relay is not None, "start() first"
        self.relay.heal()

    def wait_connected(self, timeout: float = 15.0) -> None:
        """Block until the hub sees the leaf-node connection; :class:`BrokerUnavailable` if not."""
        deadline = time.monotonic() + timeout
        while not self.leaf_connected():
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"leaf node not connected to the hub after {timeout:.0f}s")
            time.sleep(0.05)

    def leaf_connected(self) -> bool:
        """True if the hub currently has a leaf-node connection."""
        try:
            return bool(self.hub.monitor("leafz").get("leafnodes"))
        except Exception:
            return False

    def close(self) -> None:
        """Stop both servers; remove the temporary directory if this object made it."""
        if self.leaf is not None:
            self.leaf.stop()
        if self.relay is not None:
            self.relay.close()
        self.hub.stop()
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> tuple[BrokerServer, BrokerServer]:
        self.start()
        assert self.leaf is not None
        return self.hub, self.leaf

    def __exit__(self, *exc: object) -> None:
        self.close()
