"""Shipping a process's counters to the monitor: ``_evf.metrics.<client id>`` reports.

A trigger worker or any evfabric client runs in its own process; its
:mod:`evfabric.monitor.metrics` counters are invisible to the web service's ``/metrics`` unless it
reports them. :class:`MetricsReporter` publishes, every ``interval`` seconds, one JSON message::

    {"client": "host:pid", "time": 1700000000.0,
     "counters": [{"name": "evfabric_trigger_invocations",
                   "labels": {"trigger": "t", "status": "ok"}, "value": 3.0}, ...]}

on ``_evf.metrics.<client>`` (outside evfabric's ``evf.`` subject space, so no stream stores it).
With ``stats=client.stats`` (an evfabric client's :class:`~evfabric.fabric.stats.FabricStats`),
its fields travel too, as ``evfabric_client_<field>`` (``evfabric_client_dropped``...). The
monitor's tap keeps the latest report of each client; values are totals, so a lost report loses
nothing but freshness.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry

from evfabric.fabric.roundtrip import flush
from evfabric.monitor.collector import local_client_id
from evfabric.monitor.metrics import REGISTRY, counter_samples
from evfabric.monitor.tap import REPORT_SUBJECT

__all__ = ["STATS_PREFIX", "MetricsReporter", "build_report", "stats_counters"]

log = logging.getLogger("evfabric.monitor")

STATS_PREFIX = "evfabric_client_"


def stats_counters(stats: Any) -> list[dict[str, Any]]:
    """A client's own counters object (e.g. :class:`evfabric.fabric.stats.FabricStats`, any object
    with int/float attributes) as counters ``evfabric_client_<attribute>``."""
    fields = vars(stats) if hasattr(stats, "__dict__") else {k: getattr(stats, k) for k in getattr(stats, "__slots__", ())}
    return [{"name": f"{STATS_PREFIX}{k}", "labels": {}, "value": float(v)} for k, v in sorted(fields.items())
            if not k.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool)]


def build_report(client: str, registry: CollectorRegistry = REGISTRY, stats: Any = None) -> bytes:
    """The JSON report of every counter in ``registry`` (and of ``stats``, if given)."""
    counters = [{"name": n, "labels": lb, "value": v} for n, lb, v in counter_samples(registry)]
    if stats is not None:
        counters += stats_counters(stats)
    return json.dumps({"client": client, "time": time.time(), "counters": counters}).encode()


class MetricsReporter:
    """Publishes this process's counters periodically over an existing nats-py connection.

    ``await reporter.report()`` sends one report now; ``reporter.start()`` (inside a running
    loop) sends one every ``interval`` seconds until ``await reporter.stop()``, which sends a
    last one.
    """

    def __init__(self, nc: Any, client: str | None = None, interval: float = 5.0,
                 registry: CollectorRegistry = REGISTRY, stats: Any = None) -> None:
        self.nc = nc
        self.stats = stats
        self.client = client or local_client_id()
        self.interval = interval
        self.registry = registry
        self._task: asyncio.Task[None] | None = None

    @property
    def subject(self) -> str:
        """The subject this reporter publishes on (dots in the id become ``_``)."""
        return f"{REPORT_SUBJECT}.{self.client.replace('.', '_').replace(' ', '_')}"

    async def report(self) -> None:
        """Publish one report now."""
        await self.nc.publish(self.subject, build_report(self.client, self.registry, self.stats))

    def start(self) -> None:
        """Report every ``interval`` seconds on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.report()
            except Exception as exc:  # a report that fails (broker away) is retried next interval
                log.debug("monitor report failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop the periodic task and send a final report."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await self.report()
            await flush(self.nc)
        except Exception as exc:
            log.debug("final monitor report failed: %r", exc)
