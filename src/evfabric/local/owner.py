"""``SubscriptionOwner``: what a :class:`~evfabric.local.subscription.Subscription` needs of the
service that made it (an :class:`~evfabric.local.service.EventService`, a memory-broker client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from evfabric.local.subscription import Subscription

__all__ = ["SubscriptionOwner"]


class SubscriptionOwner(Protocol):
    """Ends a subscription, and delivers what is queued (pull-style readers of a sync service)."""

    def _remove_subscription(self, sub: Subscription) -> None: ...

    def process_events(self, timeout: float | None = None) -> int: ...
