"""Helpers for tests that need a real broker: servers on free 127.0.0.1 ports in a temporary
directory, always stopped at the end (even if the test fails).

    from evfabric.testing import running_broker
    with running_broker(tmp_path) as srv:
        nc = await nats.connect(srv.url)

The pytest fixtures in ``tests/conftest.py`` (``broker``, ``broker_session``, ``cluster3``,
``leaf_pair``) are thin wrappers around these.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evfabric.broker.cluster import BrokerCluster
from evfabric.broker.server import BrokerServer
from evfabric.testing.leaf import HubAndLeaf

__all__ = ["BrokerCluster", "BrokerServer", "HubAndLeaf", "running_broker", "running_cluster", "running_leaf_pair"]


@contextmanager
def running_broker(data_dir: str | os.PathLike[str] | None = None, **options: object) -> Iterator[BrokerServer]:
    """A started JetStream server on 127.0.0.1 (free ports), stopped on exit. ``options`` go
    to :class:`BrokerServer`. With ``data_dir=None`` a temporary directory is used and removed."""
    srv = BrokerServer(data_dir=Path(data_dir) if data_dir else None, **options)  # type: ignore[arg-type]
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


@contextmanager
def running_cluster(n: int = 3, base_dir: str | os.PathLike[str] | None = None, **options: object) -> Iterator[BrokerCluster]:
    """A started ``n``-server JetStream cluster on 127.0.0.1, meta leader elected, stopped on exit."""
    cl = BrokerCluster(n, base_dir=base_dir, **options)  # type: ignore[arg-type]
    try:
        cl.start()
        yield cl
    finally:
        cl.close()


@contextmanager
def running_leaf_pair(base_dir: str | os.PathLike[str] | None = None, **options: object) -> Iterator[HubAndLeaf]:
    """A started hub + leaf pair (``.hub``, ``.leaf``, ``.hub_domain``, ``.leaf_domain``), the
    leaf-node link up; ``pair.cut()`` / ``pair.heal()`` simulate an outage. Stopped on exit."""
    pair = HubAndLeaf(base_dir=base_dir, **options)  # type: ignore[arg-type]
    try:
        pair.start()
        pair.wait_connected()
        yield pair
    finally:
        pair.close()
