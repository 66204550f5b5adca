"""Names of the events the framework itself publishes in the reserved ``cca`` group (CCA 2.5)."""

from __future__ import annotations

TOPIC_CREATED = "cca.topic.created"
"""First event seen on a topic (body: ``topic``)."""
SUBSCRIPTION_ADDED = "cca.subscription.added"
"""A subscription was made (body: ``subscription``, ``pattern``, ``filter``)."""
SUBSCRIPTION_REMOVED = "cca.subscription.removed"
"""A subscription ended (body: ``subscription``, ``pattern``)."""
EVENTS_DROPPED = "cca.events.dropped"
"""Events were dropped by an overflow policy (body: ``count``, ``policy``, ``topics``: per-topic counts)."""
EVENTS_EXPIRED = "cca.events.expired"
"""Events outlived their ttl before delivery (body: ``count``, ``topics``)."""
LISTENER_FAILED = "cca.listener.failed"
"""A listener raised (body: ``subscription``, ``listener``, ``event_id``, ``topic``, ``error``)."""
FILTER_ERROR = "cca.filter.error"
"""A subscription's filter failed on an event, the first time only (body: ``subscription``,
``filter``, ``error``, ``event_id``, ``topic``); later failures are counted in ``filter_errors``."""
