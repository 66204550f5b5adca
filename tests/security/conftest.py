"""A broker with access control given explicitly (``BrokerServer(access=...)``): identities
root (administrator), alice and bob, each with a token; the topic service runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evfabric.access import AccessStore
from evfabric.access.control import AccessControl
from evfabric.access.quotas import Quotas
from evfabric.testing import BrokerServer, running_broker


@dataclass
class Secured:
    server: BrokerServer
    store: AccessStore
    control: AccessControl
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def apply(self) -> None:
        """Make the broker enforce the store as it is now (instead of waiting for the watcher)."""
        self.control.reload()


def secured_broker(data_dir: Path, quotas: Quotas | None = None) -> Iterator[Secured]:
    store = AccessStore.in_dir(data_dir)
    for name, admin in (("root", True), ("alice", False), ("bob", False), ("eve", False)):
        store.create_identity(name, admin=admin)
    tokens = {n: store.issue_token(n).secret for n in ("root", "alice", "bob", "eve")}
    control = AccessControl(store, poll_interval=0.2, quotas=quotas)
    try:
        with running_broker(data_dir, access=control) as srv:
            yield Secured(srv, store, control, tokens)
    finally:
        control.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    yield from secured_broker(tmp_path / "broker")


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[Secured]:
    """Like ``secured`` with small quotas: 2 topics, 1 MiB per topic, 1.5 MiB storage, 2 consumers,
    2 position scans."""
    yield from secured_broker(tmp_path / "broker", Quotas(streams=2, topic_bytes=1 << 20, storage=3 << 19,
                                                         consumers=2, scans=2))
