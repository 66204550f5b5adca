"""The monitoring routes of the web service: ``/metrics``, ``/monitor/snapshot``, ``/dashboard``.

``router`` is a FastAPI ``APIRouter``; the web service (or any FastAPI app) includes it and says
which broker to watch::

    from evfabric.monitor import Monitor, web
    app.include_router(web.router)
    web.use_monitor(app, Monitor(broker.monitor_url, broker.url))

Without :func:`use_monitor`, the routes build one monitor from the environment variables
``EVFABRIC_MONITOR_URL`` (the NATS monitoring URL, required) and ``EVFABRIC_URL`` (the NATS URL,
for the traffic tap), and answer 503 if there is none. The monitor starts sampling in the
background at the first request, so the dashboard has history from then on.
"""

from __future__ import annotations

import os
import threading
from importlib import resources

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from evfabric.monitor.collector import Monitor
from evfabric.monitor.exporter import CONTENT_TYPE, render

__all__ = ["dashboard_html", "router", "use_monitor"]

router = APIRouter(tags=["monitoring"])

_STATE_KEY = "evfabric_monitor"
_env_monitor: Monitor | None = None
_env_lock = threading.Lock()


def use_monitor(app: FastAPI, monitor: Monitor) -> Monitor:
    """Make ``app``'s monitoring routes read ``monitor`` (the caller closes it)."""
    setattr(app.state, _STATE_KEY, monitor)
    return monitor


def _from_env() -> Monitor | None:
    global _env_monitor
    with _env_lock:
        if _env_monitor is None and os.environ.get("EVFABRIC_MONITOR_URL"):
            _env_monitor = Monitor(os.environ["EVFABRIC_MONITOR_URL"], os.environ.get("EVFABRIC_URL") or None)
        return _env_monitor


def get_monitor(request: Request) -> Monitor:
    """The monitor of the app serving ``request``; 503 if none is configured."""
    monitor = getattr(request.app.state, _STATE_KEY, None) or _from_env()
    if monitor is None:
        raise HTTPException(503, "monitoring is not configured: call evfabric.monitor.web.use_monitor(app, "
                                 "Monitor(...)) or set EVFABRIC_MONITOR_URL")
    return monitor.start()


def dashboard_html() -> str:
    """The dashboard page (self-contained: inline CSS and JS, no external resources)."""
    return resources.files("evfabric.monitor").joinpath("dashboard.html").read_text(encoding="utf-8")


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """Broker, topic, consumer, trigger and drop figures in the Prometheus text format,
    sampled at scrape time (at most one broker read per sampling interval)."""
    return Response(render(get_monitor(request)), media_type=CONTENT_TYPE)


@router.get("/monitor/snapshot", summary="Monitoring snapshot with history")
def snapshot(request: Request, history: float = Query(120.0, ge=0, le=3600,
                                                      description="seconds of history to include")) -> JSONResponse:
    """The latest snapshot (server, topics with rates, consumers, connections, triggers,
    drops) and ``history``: time series over the last ``history`` seconds."""
    return JSONResponse(get_monitor(request).snapshot(history))


@router.get("/dashboard", response_class=HTMLResponse, summary="Live monitoring dashboard")
def dashboard(request: Request) -> HTMLResponse:
    """A live page that polls ``/monitor/snapshot`` every second and redraws without reload."""
    get_monitor(request)  # start sampling now, so history exists when the page first polls
    return HTMLResponse(dashboard_html())
