"""Counters that evfabric components update in their own process, and the registry holding them.

Other modules report what only they can see::

    from evfabric.monitor import metrics
    metrics.TRIGGER_INVOCATIONS.labels(trigger="resize", status="ok").inc()
    metrics.record_trigger("resize", ok=False)            # the same, as a helper
    metrics.EVENTS_DROPPED.labels(topic="jobs", reason="queue_full").inc(3)

``status`` is one of :data:`TRIGGER_STATUSES`. Names put the thing counted last
(``evfabric_dropped_events``; ``_total`` is added on exposition). These counters live in :data:`REGISTRY` (not
prometheus-client's global default registry), so importing evfabric never pollutes an
application's own metrics. The web service's ``/metrics`` exposes them with the broker's figures;
a process that is not the web service ships them there with
:class:`evfabric.monitor.reporter.MetricsReporter`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from evfabric.core.errors import ConfigError

__all__ = ["DROPPED_EVENTS", "EVENTS_DROPPED", "EVENTS_PUBLISHED", "EVENTS_RECEIVED", "REGISTRY", "TRIGGER_INVOCATIONS",
           "TRIGGER_STATUSES", "counter_samples", "record_drop", "record_trigger"]

REGISTRY = CollectorRegistry(auto_describe=True)

TRIGGER_STATUSES = ("ok", "failed", "retried", "dead_lettered")

TRIGGER_INVOCATIONS = Counter(
    "evfabric_trigger_invocations",
    "Trigger invocations by outcome: ok (the action returned), failed (it raised or timed out), "
    "retried (a failed invocation was scheduled again), dead_lettered (given up).",
    ["trigger", "status"], registry=REGISTRY,
)
DROPPED_EVENTS = "evfabric_dropped_events"
EVENTS_DROPPED = Counter(
    DROPPED_EVENTS,
    "Events dropped by an evfabric client, by topic and reason (queue_full, disconnected, "
    "expired, ...). Best-effort delivery may drop; every drop is counted here.",
    ["topic", "reason"], registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "evfabric_client_published_events",
    "Events a client accepted for publishing, by topic and delivery (best_effort, reliable).",
    ["topic", "delivery"], registry=REGISTRY,
)
EVENTS_RECEIVED = Counter(
    "evfabric_client_received_events",
    "Events a client handed to its listeners, by subscription pattern.",
    ["pattern"], registry=REGISTRY,
)


def record_trigger(trigger: str, ok: bool = True, status: str | None = None) -> None:
    """Count one invocation of ``trigger``: ``status`` if given, else ``ok``/``failed``."""
    status = status or ("ok" if ok else "failed")
    if status not in TRIGGER_STATUSES:
        raise ConfigError(f"status must be one of {TRIGGER_STATUSES}, got {status!r}")
    TRIGGER_INVOCATIONS.labels(trigger=trigger, status=status).inc()


def record_drop(topic: str, reason: str, n: int = 1) -> None:
    """Count ``n`` events of ``topic`` dropped for ``reason``."""
    EVENTS_DROPPED.labels(topic=topic, reason=reason).inc(n)


def counter_samples(registry: CollectorRegistry = REGISTRY) -> list[tuple[str, dict[str, str], float]]:
    """Every counter value in ``registry`` as ``(family name, labels, value)``; the family name is
    without the ``_total`` suffix, and ``_created`` samples are left out."""
    out: list[tuple[str, dict[str, str], float]] = []
    for family in registry.collect():
        if family.type != "counter":
            continue
        for s in family.samples:
            if s.name.endswith("_total"):
                out.append((family.name, dict(s.labels), float(s.value)))
    return out
