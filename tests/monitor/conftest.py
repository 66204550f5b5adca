"""Fixtures for the monitoring tests: a Monitor on the test's broker and a tiny FastAPI app that
includes the monitoring router (helpers live in ``monitor_helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from monitor_helpers import make_app

from evfabric.monitor import Monitor
from evfabric.testing import BrokerServer


@pytest.fixture
def monitor(broker: BrokerServer) -> Iterator[Monitor]:
    m = Monitor(broker.monitor_url, broker.url, interval=0.2)
    yield m
    m.close()


@pytest.fixture
def app_client(monitor: Monitor) -> Iterator[TestClient]:
    with TestClient(make_app(monitor)) as client:
        yield client
