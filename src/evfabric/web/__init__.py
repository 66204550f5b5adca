"""The evfabric web service: :func:`create_app` builds it, :func:`start_web` runs it, and
:func:`start_with_broker` is the hook ``evfabric serve`` calls."""

from __future__ import annotations

from evfabric.web.app import create_app
from evfabric.web.server import WebServer, start_web, start_with_broker

__all__ = ["WebServer", "create_app", "start_web", "start_with_broker"]
