"""The in-process event service: dispatch modes, bounded queues, retention, the CCA facade."""

from evfabric.local.overflow import Overflow
from evfabric.local.retention import Retention
from evfabric.local.service import EventService, ServiceStats
from evfabric.local.subscription import Listener, Subscription

__all__ = ["EventService", "Listener", "Overflow", "Retention", "ServiceStats", "Subscription"]
