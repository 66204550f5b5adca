"""Monitoring: broker and topic figures as Prometheus metrics, a JSON snapshot with history, a
live dashboard and ``evfabric top``.

* :class:`Monitor` (``collector.py``): samples a NATS server's monitoring endpoint (and listens
  to evfabric traffic with a tap) and builds snapshots with totals and rates.
* ``metrics.py``: counters other components update (``TRIGGER_INVOCATIONS``, ``EVENTS_DROPPED``...).
* ``reporter.py``: ships a process's counters to the monitor over NATS.
* ``exporter.py``: the Prometheus collector; ``web.py``: the FastAPI ``router``.

``docs/monitoring.md`` says what every number means.
"""

from __future__ import annotations

from evfabric.monitor.collector import Monitor, local_client_id

__all__ = ["Monitor", "local_client_id"]
