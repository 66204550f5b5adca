"""Shared pytest fixtures: real NATS servers on free 127.0.0.1 ports, stopped at teardown.

* ``broker``: a fresh JetStream server for one test (``broker.url``, ``broker.monitor_url``).
* ``broker_session``: one server shared by the whole session (faster; streams persist between
  tests, so use unique stream and subject names).
* ``cluster3``: a 3-server JetStream cluster (``cluster3.urls``, ``cluster3.kill(i)``...).
* ``leaf_pair``: a hub and a leaf node (``leaf_pair.hub``, ``leaf_pair.leaf``, domains).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evfabric.testing import (
    BrokerCluster,
    BrokerServer,
    HubAndLeaf,
    running_broker,
    running_cluster,
    running_leaf_pair,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerServer]:
    with running_broker(tmp_path / "broker") as srv:
        yield srv


@pytest.fixture(scope="session")
def broker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    with running_broker(tmp_path_factory.mktemp("broker_session")) as srv:
        yield srv


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[BrokerCluster]:
    with running_cluster(3, tmp_path / "cluster") as cl:
        yield cl


@pytest.fixture
def leaf_pair(tmp_path: Path) -> Iterator[HubAndLeaf]:
    with running_leaf_pair(tmp_path / "leaf") as pair:
        yield pair
