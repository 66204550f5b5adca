"""Helpers for the monitoring tests (imported by conftest and the test modules)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from evfabric.monitor import Monitor
from evfabric.monitor import web as monitor_web
from evfabric.testing import wait_for as wait_for  # re-exported: the tests here import it from here
from evfabric.web.server import WebServer


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and index every sample by (name, sorted labels)."""
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    out = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(samples: dict, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels`` (None if absent)."""
    for (n, lb), v in samples.items():
        if n == name and all(dict(lb).get(k) == val for k, val in labels.items()):
            return v
    return None


def make_app(mon: Monitor) -> FastAPI:
    app = FastAPI()
    app.include_router(monitor_web.router)
    monitor_web.use_monitor(app, mon)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` (evfabric's :class:`WebServer`: uvicorn in a thread, on a free 127.0.0.1
    port); yield its base URL."""
    web = WebServer(app).start()
    try:
        yield web.url
    finally:
        web.stop()
