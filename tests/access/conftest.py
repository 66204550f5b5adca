"""Fixtures for the access tests: a real broker with access control attached."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from evfabric.access import AccessStore
from evfabric.access.control import AccessControl
from evfabric.testing import BrokerServer


@dataclass
class Guarded:
    server: BrokerServer
    store: AccessStore
    control: AccessControl


@pytest.fixture
def guarded(broker: BrokerServer) -> Iterator[Guarded]:
    """The ``broker`` fixture with an access store (root admin, alice, bob) enforced on it."""
    store = AccessStore.in_dir(broker.data_dir)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    store.create_identity("bob")
    control = AccessControl(store, poll_interval=0.2)
    control.attach(broker)
    try:
        yield Guarded(broker, store, control)
    finally:
        control.close()
